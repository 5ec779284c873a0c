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
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// policyStack is an in-process system (SQLite ledger) whose catalog has
// echo and "gpt" on a fake OpenAI-compatible upstream.
type policyStack struct {
	dev  *stack.Dev
	fake *providertest.OpenAI
}

func startPolicyStack(t *testing.T, models *config.AuthzModels) *policyStack {
	t.Helper()
	fake := providertest.NewOpenAI(providertest.Reply{
		Chunks: []string{"from", " the", " fake"},
		Usage:  &providertest.Usage{InputTokens: 3, OutputTokens: 3},
	})
	t.Cleanup(fake.Close)
	cfg := devConfig(t, "")
	cfg.Chat.Providers = []config.ChatProvider{{Name: "fake-openai", Type: "openai", BaseURL: fake.URL}}
	cfg.Chat.Models = []config.ChatModel{
		{ID: "gpt", Aliases: []string{"gpt-alias"}, Provider: "fake-openai", UpstreamModel: "gpt-4o-mini", MaxTokens: 4096, DefaultMaxTokens: 256},
		{ID: "echo", Provider: "echo", MaxTokens: 4096, DefaultMaxTokens: 1024},
	}
	cfg.Authz.Models = models
	return &policyStack{dev: startDev(t, cfg), fake: fake}
}

// openAIClient is an openai-go client of the stack that authenticates with
// cred (a token or an API key).
func (s *policyStack) openAIClient(t *testing.T, cred string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(s.dev.EdgeURL()+"/v1/"),
		option.WithHTTPClient(httpClientTrusting(t, s.dev.CAFile())),
		option.WithMaxRetries(0),
		option.WithAPIKey(cred),
	)
}

// wsForbidden publishes a request for model on c (subscribed as "out" to
// the caller's outbound channel) and checks that the whole answer is one
// forbidden error event naming the model and containing why.
func wsForbidden(ctx context.Context, t *testing.T, c *appsyncClient, ch string, auth map[string]string, model, why string) {
	t.Helper()
	f := c.op(ctx, "publish", "p-"+model, "/Inbound-Messages/"+ch, auth, referenceRequest(t, "may I", model, "c1"))
	if f.Type != "publish_success" || len(f.Successful) != 1 {
		t.Fatalf("publish for %s: %+v", model, f)
	}
	evs := collectAnswer(ctx, t, c, "out")
	if len(evs) != 1 || evs[0].Error == nil {
		t.Fatalf("want one error event for %s, got %+v", model, evs)
	}
	e := evs[0].Error
	if e.Type != bus.ErrTypeForbidden || e.RequestID != f.Successful[0].Identifier || evs[0].Seq != 0 ||
		!strings.Contains(e.Message, "model "+model) || !strings.Contains(e.Message, why) {
		t.Fatalf("error event for %s: %+v", model, e)
	}
}

// wsAllowed publishes a request for model on c and checks the answer.
func wsAllowed(ctx context.Context, t *testing.T, c *appsyncClient, ch string, auth map[string]string, model, text string) {
	t.Helper()
	f := c.op(ctx, "publish", "p-ok-"+model, "/Inbound-Messages/"+ch, auth, referenceRequest(t, text, model, "c1"))
	if f.Type != "publish_success" || len(f.Successful) != 1 {
		t.Fatalf("publish for %s: %+v", model, f)
	}
	checkAnswer(t, collectAnswer(ctx, t, c, "out"), f.Successful[0].Identifier, text)
}

// sdkForbidden checks that openai-go gets a 403 in OpenAI's error format
// for model, streaming and not.
func sdkForbidden(ctx context.Context, t *testing.T, client openai.Client, model, why string) {
	t.Helper()
	check := func(how string, err error) {
		t.Helper()
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s %s: want an API error, got %v", how, model, err)
		}
		if apiErr.StatusCode != 403 || apiErr.Code != bus.ErrTypeForbidden || apiErr.Type != "permission_error" ||
			!strings.Contains(apiErr.Message, "model "+model) || !strings.Contains(apiErr.Message, why) {
			t.Fatalf("%s %s: status %d type %q code %q message %q", how, model, apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Message)
		}
	}
	_, err := client.Chat.Completions.New(ctx, userParams(model, "may I"))
	check("non-streaming", err)
	stream := client.Chat.Completions.NewStreaming(ctx, userParams(model, "may I"))
	for stream.Next() {
		t.Fatalf("streaming %s: unexpected chunk %+v", model, stream.Current())
	}
	check("streaming", stream.Err())
}

// TestModelPolicyAPIKeyScope: an API key scoped to models ["echo"] may use
// echo and is refused gpt, over WebSocket (a forbidden error event) and
// through the openai-go SDK (403), while its owner's own token, which no
// key narrows, may use gpt.
func TestModelPolicyAPIKeyScope(t *testing.T) {
	t.Parallel()
	s := startPolicyStack(t, nil) // no model policy: every model for every caller
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nc := busConn(t, s.dev)
	key := createKey(ctx, t, nc, bus.KeyCreateRequest{Owner: "kora", Name: "echo-only", Models: []string{"echo"}})
	const why = "outside the API key's scope"

	// WebSocket.
	auth := map[string]string{"x-api-key": key.Secret}
	c, err := dialAuth(ctx, t, s.dev.EdgeURL(), s.dev.CAFile(), auth)
	if err != nil {
		t.Fatalf("connect with the key: %v", err)
	}
	if f := c.op(ctx, "subscribe", "out", "/Outbound-Messages/kora", auth); f.Type != "subscribe_success" {
		t.Fatalf("subscribe: %+v", f)
	}
	wsAllowed(ctx, t, c, "kora", auth, "echo", "hello scoped key")
	wsForbidden(ctx, t, c, "kora", auth, "gpt", why)
	// An alias is checked as the model it names.
	f := c.op(ctx, "publish", "p-alias", "/Inbound-Messages/kora", auth, referenceRequest(t, "may I", "gpt-alias", "c1"))
	if f.Type != "publish_success" {
		t.Fatalf("publish: %+v", f)
	}
	if evs := collectAnswer(ctx, t, c, "out"); len(evs) != 1 || evs[0].Error == nil || evs[0].Error.Type != bus.ErrTypeForbidden ||
		!strings.Contains(evs[0].Error.Message, "model gpt") {
		t.Fatalf("alias answer %+v", evs)
	}

	// The official OpenAI SDK.
	client := s.openAIClient(t, key.Secret)
	resp, err := client.Chat.Completions.New(ctx, userParams("echo", "echo me please"))
	if err != nil || resp.Choices[0].Message.Content != "echo me please" {
		t.Fatalf("echo with the key: %+v %v", resp, err)
	}
	sdkForbidden(ctx, t, client, "gpt", why)
	if n := len(s.fake.Requests()); n != 0 {
		t.Fatalf("the upstream was called %d times for refused requests", n)
	}

	// The owner's own token is not narrowed by the key: gpt is served.
	owner := s.openAIClient(t, must(s.dev.Issuer().Mint(authz.DevClaims{Sub: "kora"})))
	if resp, err := owner.Chat.Completions.New(ctx, userParams("gpt", "hi")); err != nil || resp.Choices[0].Message.Content != "from the fake" {
		t.Fatalf("gpt with the owner's token: %+v %v", resp, err)
	}
}

// TestModelPolicyPlansAndGroups: with authz.models configured, a caller
// without a plan or group granting gpt is refused it (WebSocket and
// SDK), while the plan and the group that grant it are served.
func TestModelPolicyPlansAndGroups(t *testing.T) {
	t.Parallel()
	s := startPolicyStack(t, &config.AuthzModels{
		Default: []string{"echo"},
		Plans:   map[string][]string{"pro": {"gpt"}},
		Groups:  map[string][]string{"beta": {"gpt*"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const why = "not available to plan free"

	freeToken := must(s.dev.Issuer().Mint(authz.DevClaims{Sub: "fern", Plan: "free"}))
	c := dialAppSync(ctx, t, s.dev.EdgeURL(), s.dev.CAFile(), freeToken)
	if f := c.subscribe(ctx, "out", "/Outbound-Messages/fern"); f.Type != "subscribe_success" {
		t.Fatalf("subscribe: %+v", f)
	}
	auth := map[string]string{"Authorization": freeToken}
	wsAllowed(ctx, t, c, "fern", auth, "echo", "default models work")
	wsForbidden(ctx, t, c, "fern", auth, "gpt", why)
	sdkForbidden(ctx, t, s.openAIClient(t, freeToken), "gpt", why)

	for _, claims := range []authz.DevClaims{{Sub: "pia", Plan: "pro"}, {Sub: "gus", Plan: "free", Groups: []string{"beta"}}} {
		client := s.openAIClient(t, must(s.dev.Issuer().Mint(claims)))
		if resp, err := client.Chat.Completions.New(ctx, userParams("gpt", "hi")); err != nil || resp.Choices[0].Message.Content != "from the fake" {
			t.Fatalf("gpt for %+v: %+v %v", claims, resp, err)
		}
	}
	if n := len(s.fake.Requests()); n != 2 {
		t.Fatalf("the upstream was called %d times, want 2 (only the allowed requests)", n)
	}
}
