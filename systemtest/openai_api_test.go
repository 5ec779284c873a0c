package systemtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// openAIStack is an in-process system whose catalog has "gpt" on a fake
// OpenAI-compatible upstream (priced $2/$8 per million), and echo.
type openAIStack struct {
	dev      *stack.Dev
	fake     *providertest.OpenAI
	dbURL    string
	client   openai.Client
	token    string
	sub      string
	clientFn func(opts ...option.RequestOption) openai.Client
}

func startOpenAIStack(t *testing.T, def providertest.Reply, mod ...func(*config.Config)) *openAIStack {
	t.Helper()
	fake := providertest.NewOpenAI(def)
	t.Cleanup(fake.Close)
	dbURL := postgresSchema(t)
	cfg := devConfig(t, dbURL)
	cfg.Chat.Providers = []config.ChatProvider{{Name: "fake-openai", Type: "openai", BaseURL: fake.URL, APIKey: "sk-upstream"}}
	cfg.Chat.Models = []config.ChatModel{
		{ID: "gpt", Aliases: []string{"gpt-alias"}, Provider: "fake-openai", UpstreamModel: "gpt-4o-mini", MaxTokens: 4096, DefaultMaxTokens: 256,
			Price: config.ChatPrice{Input: 2, Output: 8}},
		{ID: "echo", Provider: "echo", MaxTokens: 4096, DefaultMaxTokens: 1024},
	}
	cfg.Chat.RetryAttempts = 2
	cfg.Chat.RetryBackoff = time.Millisecond
	for _, m := range mod {
		m(&cfg)
	}
	dev := startDev(t, cfg)
	s := &openAIStack{dev: dev, fake: fake, dbURL: dbURL, sub: "oa-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	s.token = must(dev.Issuer().Mint(authz.DevClaims{Sub: s.sub}))
	s.clientFn = func(opts ...option.RequestOption) openai.Client {
		base := []option.RequestOption{
			option.WithBaseURL(dev.EdgeURL() + "/v1/"),
			option.WithHTTPClient(httpClientTrusting(t, dev.CAFile())),
			option.WithMaxRetries(0),
			option.WithAPIKey(s.token),
		}
		return openai.NewClient(append(base, opts...)...)
	}
	s.client = s.clientFn()
	return s
}

func userParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(text)},
	}
}

func TestOpenAIStreamingWithUsage(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{
		Chunks: []string{"Hello", " from", " the", " fake"},
		Usage:  &providertest.Usage{InputTokens: 9, OutputTokens: 4},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := userParams("gpt", "say hello")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	params.MaxCompletionTokens = openai.Int(100)
	stream := s.client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	var chunks, contentChunks int
	var id string
	var finish string
	var usageChunk *openai.ChatCompletionChunk
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		chunks++
		id = c.ID
		if len(c.Choices) == 0 {
			cc := c
			usageChunk = &cc
			continue
		}
		if c.Choices[0].Delta.Content != "" {
			contentChunks++
		}
		if c.Choices[0].FinishReason != "" {
			finish = c.Choices[0].FinishReason
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := acc.Choices[0].Message.Content; got != "Hello from the fake" {
		t.Fatalf("streamed text %q", got)
	}
	if contentChunks != 4 || finish != "stop" || !strings.HasPrefix(id, "chatcmpl-") {
		t.Fatalf("%d content chunks, finish %q, id %q", contentChunks, finish, id)
	}
	if usageChunk == nil || usageChunk.Usage.PromptTokens != 9 || usageChunk.Usage.CompletionTokens != 4 || usageChunk.Usage.TotalTokens != 13 {
		t.Fatalf("final usage chunk %+v", usageChunk)
	}
	// The upstream got the request translated, with usage requested.
	reqs := s.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	body := reqs[0].Body
	so, _ := body["stream_options"].(map[string]any)
	if body["model"] != "gpt-4o-mini" || so["include_usage"] != true || body["max_tokens"] != float64(100) {
		t.Fatalf("upstream body %v", body)
	}
	rows := waitLedgerRows(t, "pgx", s.dbURL, strings.TrimPrefix(id, "chatcmpl-"))
	if len(rows) != 1 || rows[0].Sub != s.sub || rows[0].ModelID != "gpt" || rows[0].Status != bus.UsageStatusOK || rows[0].InputTokens != 9 || rows[0].OutputTokens != 4 {
		t.Fatalf("ledger %+v", rows)
	}
}

func TestOpenAINonStreaming(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{
		Chunks: []string{"one", " two"},
		Usage:  &providertest.Usage{InputTokens: 5, OutputTokens: 2},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := s.client.Chat.Completions.New(ctx, userParams("gpt-alias", "count"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "one two" || resp.Choices[0].FinishReason != "stop" || resp.Choices[0].Message.Role != "assistant" {
		t.Fatalf("response %+v", resp)
	}
	if resp.Usage.PromptTokens != 5 || resp.Usage.CompletionTokens != 2 || resp.Usage.TotalTokens != 7 || resp.Object != "chat.completion" {
		t.Fatalf("usage %+v object %q", resp.Usage, resp.Object)
	}
	rows := waitLedgerRows(t, "pgx", s.dbURL, strings.TrimPrefix(resp.ID, "chatcmpl-"))
	if len(rows) != 1 || rows[0].OutputTokens != 2 || rows[0].ModelID != "gpt" {
		t.Fatalf("ledger %+v", rows)
	}

	// An API key, sent the OpenAI way (Authorization: Bearer <key>).
	nc, err := bus.ConnectInProcess(s.dev.Server(), "openai-test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	key, err := bus.Request[bus.KeyCreateResponse](ctx, nc, bus.NewSubjects("").AuthzKeysCreate(), bus.KeyCreateRequest{
		Caller: identity.Identity{Sub: "openai-test", Issuer: "systemtest", ChannelID: "openai-test", Kind: identity.KindService},
		Name:   "sdk", Owner: s.sub,
	}, nil)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	withKey := s.clientFn(option.WithAPIKey(key.Secret))
	resp, err = withKey.Chat.Completions.New(ctx, userParams("gpt", "count"))
	if err != nil || resp.Choices[0].Message.Content != "one two" {
		t.Fatalf("with an API key: %+v %v", resp, err)
	}

	// Echo through the same API, and the model list.
	resp, err = s.client.Chat.Completions.New(ctx, userParams("echo", "echo this back"))
	if err != nil || resp.Choices[0].Message.Content != "echo this back" {
		t.Fatalf("echo: %+v %v", resp, err)
	}
	page, err := s.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID+"/"+m.OwnedBy)
	}
	if strings.Join(ids, ",") != "gpt/fake-openai,echo/echo" {
		t.Fatalf("models %v", ids)
	}
	if m, err := s.client.Models.Get(ctx, "gpt-alias"); err != nil || m.ID != "gpt" {
		t.Fatalf("model by alias: %+v %v", m, err)
	}
	var apiErr *openai.Error
	if _, err := s.client.Models.Get(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != bus.ErrTypeModelNotFound {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestOpenAIErrorStatuses(t *testing.T) {
	t.Parallel()
	// "broke" may spend 100 micro-USD a day: less than gpt's worst case
	// at its default 256 output tokens ($8/M), more than one token.
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"ok", " then"}}, func(c *config.Config) {
		c.Meter.Plans = map[string]config.QuotaPlan{"tiny": {Day: config.QuotaLimits{SpendMicroUSD: 100}}}
		c.Meter.UserPlans = map[string]string{"broke": "tiny"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	badKey := s.clientFn(option.WithAPIKey("not-a-token"))
	broke := s.clientFn(option.WithAPIKey(must(s.dev.Issuer().Mint(authz.DevClaims{Sub: "broke"}))))
	cases := []struct {
		name       string
		client     openai.Client
		params     openai.ChatCompletionNewParams
		push       []providertest.Reply
		status     int
		code       string
		retryAfter string
	}{
		{name: "unauthenticated", client: badKey, params: userParams("gpt", "hi"), status: 401, code: "invalid_api_key"},
		{name: "empty messages", client: s.client, params: openai.ChatCompletionNewParams{Model: "gpt", Messages: []openai.ChatCompletionMessageParamUnion{}}, status: 400, code: "invalid_value"},
		{name: "max tokens over the model's limit", client: s.client, params: func() openai.ChatCompletionNewParams {
			p := userParams("gpt", "hi")
			p.MaxCompletionTokens = openai.Int(100000)
			return p
		}(), status: 400, code: bus.ErrTypeValidation},
		{name: "spend quota", client: broke, params: userParams("gpt", "hi"), status: 429, code: bus.ErrTypeQuotaExceeded, retryAfter: "*"},
		{name: "unknown model", client: s.client, params: userParams("no-such-model", "hi"), status: 404, code: bus.ErrTypeModelNotFound},
		{name: "upstream throttled", client: s.client, params: userParams("gpt", "hi"),
			push:   []providertest.Reply{{Status: 429}, {Status: 429, RetryAfter: "3"}},
			status: 429, code: bus.ErrTypeUpstreamThrottled, retryAfter: "3"},
		{name: "upstream failing", client: s.client, params: userParams("gpt", "hi"),
			push:   []providertest.Reply{{Status: 500}, {Status: 500}},
			status: 502, code: bus.ErrTypeUpstreamError},
		{name: "upstream refuses the request", client: s.client, params: userParams("gpt", "hi"),
			push:   []providertest.Reply{{Status: 400}},
			status: 400, code: bus.ErrTypeUpstreamError},
	}
	for _, tc := range cases {
		s.fake.Push(tc.push...)
		_, err := tc.client.Chat.Completions.New(ctx, tc.params)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: want an API error, got %v", tc.name, err)
		}
		if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Message == "" {
			t.Errorf("%s: status %d code %q message %q; want %d %q", tc.name, apiErr.StatusCode, apiErr.Code, apiErr.Message, tc.status, tc.code)
		}
		if got := apiErr.Response.Header.Get("Retry-After"); got != tc.retryAfter && (tc.retryAfter != "*" || got == "") {
			t.Errorf("%s: Retry-After %q, want %q", tc.name, got, tc.retryAfter)
		}
	}

	// Within its spend limit the same caller is served, priced from the
	// catalog.
	small := userParams("gpt", "hi")
	small.MaxCompletionTokens = openai.Int(2)
	if resp, err := broke.Chat.Completions.New(ctx, small); err != nil || resp.Choices[0].Message.Content != "ok then" {
		t.Fatalf("small request within the spend limit: %+v %v", resp, err)
	}

	// The same statuses reach a streaming client before the first chunk.
	s.fake.Push(providertest.Reply{Status: 429}, providertest.Reply{Status: 429})
	stream := s.client.Chat.Completions.NewStreaming(ctx, userParams("gpt", "hi"))
	for stream.Next() {
		t.Fatalf("unexpected chunk %+v", stream.Current())
	}
	var apiErr *openai.Error
	if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 429 || apiErr.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("streaming throttled: %v", stream.Err())
	}
}

func TestOpenAIClientGoneCancelsUpstream(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"first", " second", " third"}, Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reqCtx, leave := context.WithCancel(ctx)
	params := userParams("gpt", "go on")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := s.client.Chat.Completions.NewStreaming(reqCtx, params)
	var id string
	var text strings.Builder
	for stream.Next() {
		c := stream.Current()
		id = c.ID
		text.WriteString(c.Choices[0].Delta.Content)
		if text.String() == "first second third" {
			break
		}
	}
	if text.String() != "first second third" {
		t.Fatalf("got %q before the upstream hung: %v", text.String(), stream.Err())
	}
	leave() // the client goes away mid-answer
	_ = stream.Close()
	if !s.fake.WaitFor(ctx, func(_, cancelled int) bool { return cancelled == 1 }) {
		t.Fatal("the upstream request's context never ended")
	}
	rows := waitLedgerRows(t, "pgx", s.dbURL, strings.TrimPrefix(id, "chatcmpl-"))
	// "first second third" is 18 bytes: 5 estimated output tokens.
	if len(rows) != 1 || rows[0].Status != bus.UsageStatusCancelled || rows[0].OutputTokens != 5 {
		t.Fatalf("ledger %+v", rows)
	}
}
