package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/nats-io/nats.go"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// fakeAWS is an AWS configuration with static credentials, so the SDK
// signs requests without looking for real ones.
func fakeAWS() *aws.Config {
	return &aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
}

// bedrockConfig is a chat config with one Bedrock provider on fake and two
// models: "claude" (falling back to "claude-backup") and "claude-backup".
func bedrockConfig(fake *providertest.Bedrock) chat.Config {
	return chat.Config{
		Providers: []chat.ProviderConfig{{Name: "br", Type: chat.ProviderTypeBedrock, BaseURL: fake.URL, AWS: fakeAWS(), MaxConcurrent: 4}},
		Models: []chat.Model{
			{
				ID: "claude", Provider: "br", UpstreamModel: "anthropic.claude-v1", DefaultMaxTokens: 100, MaxTokens: 1000,
				ContextWindow: 200000, Price: chat.Price{InputPerMillion: 3, OutputPerMillion: 15},
				Guardrail: &chat.Guardrail{ID: "gr-1", Version: "2", Trace: "enabled"},
				Fallbacks: []string{"claude-backup"},
			},
			{ID: "claude-backup", Provider: "br", UpstreamModel: "anthropic.claude-backup", DefaultMaxTokens: 100, MaxTokens: 1000, Price: chat.Price{InputPerMillion: 1, OutputPerMillion: 5}},
		},
		RetryAttempts: 2,
		RetryBackoff:  time.Millisecond,
	}
}

func modelRequest(model, text string, mod ...func(*bus.ChatRequest)) []byte {
	return request(text, append([]func(*bus.ChatRequest){func(r *bus.ChatRequest) { r.ModelID = model }}, mod...)...)
}

// paths lists the upstream request paths of a fake.
func paths(reqs []providertest.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Path
	}
	return out
}

func TestBedrockStream(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"Hello", " there", " friend"},
		Usage:  &providertest.Usage{InputTokens: 12, OutputTokens: 3},
	})
	defer fake.Close()
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	alice := user("alice")
	sub := h.listen(h.subj.Outbound(alice.ChannelID))
	temp := 0.5
	h.publish(alice, "req-br", modelRequest("claude", "hi", func(r *bus.ChatRequest) {
		r.System = []bus.ContentBlock{{Text: "be brief"}}
		r.InferenceConfig = &bus.InferenceConfig{MaxTokens: 50, Temperature: &temp, StopSequences: []string{"END"}}
	}), nil)
	md := checkAnswer(t, answer(t, sub), "req-br", "conv-1", "Hello there friend", "end_turn")
	if u := md.Metadata.Usage; u.InputTokens != 12 || u.OutputTokens != 3 || u.TotalTokens != 15 || u.Estimated {
		t.Fatalf("usage %+v, want 12/3 exact from the metadata event", u)
	}

	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/model/anthropic.claude-v1/converse-stream" {
		t.Fatalf("upstream requests %v", paths(reqs))
	}
	b, _ := json.Marshal(reqs[0].Body)
	for _, want := range []string{`"system":[{"text":"be brief"}]`, `"maxTokens":50`, `"temperature":0.5`, `"stopSequences":["END"]`,
		`"guardrailIdentifier":"gr-1"`, `"guardrailVersion":"2"`, `"trace":"enabled"`, `"messages":[{"content":[{"text":"hi"}],"role":"user"}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("upstream body %s lacks %s", b, want)
		}
	}

	// Cost: 12 input at $3/M and 3 output at $15/M = 36 + 45 micro-USD.
	rec, _ := h.usageRecord("acme", "req-br")
	if rec.Status != bus.UsageStatusOK || rec.Provider != "br" || rec.ModelID != "claude" || rec.CostMicroUSD != 81 || rec.InputTokens != 12 || rec.OutputTokens != 3 {
		t.Fatalf("usage record %+v", rec)
	}
	reserves, settles, _ := h.c.snapshot()
	if len(reserves) != 1 || reserves[0].MaxCostMicroUSD <= 0 || reserves[0].MaxOutputTokens != 50 {
		t.Fatalf("reserve %+v", reserves)
	}
	// The reservation covers the dearest model of the chain at full output.
	if want := int64(reserves[0].InputTokens*3 + 50*15); reserves[0].MaxCostMicroUSD != want {
		t.Fatalf("MaxCostMicroUSD %d, want %d", reserves[0].MaxCostMicroUSD, want)
	}
	if len(settles) != 1 || settles[0].CostMicroUSD != 81 || settles[0].Usage.TotalTokens != 15 {
		t.Fatalf("settle %+v", settles)
	}
}

func TestBedrockToolUse(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks:    []string{"Checking", " the weather."},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "get_weather", InputChunks: []string{`{"city":`, `"Oslo"}`}}},
		Usage:     &providertest.Usage{InputTokens: 30, OutputTokens: 12},
	})
	defer fake.Close()
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	alice := user("alice")
	sub := h.listen(h.subj.Outbound(alice.ChannelID))
	h.publish(alice, "req-tool", modelRequest("claude", "Weather in Oslo?", func(r *bus.ChatRequest) {
		r.ToolConfig = &bus.ToolConfig{
			Tools:      []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "get_weather", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}}},
			ToolChoice: &bus.ToolChoice{Any: &struct{}{}},
		}
	}), nil)
	evs := answer(t, sub)

	// The client sees the text in block 0, then the tool call in block 1:
	// its start, its input in pieces, both blocks stopped, and tool_use.
	var starts []bus.ContentBlockStart
	var input strings.Builder
	stops := map[int]bool{}
	var stop *bus.MessageStop
	for _, ev := range evs {
		switch {
		case ev.Error != nil:
			t.Fatalf("error event %+v", ev.Error)
		case ev.ContentBlockStart != nil:
			starts = append(starts, *ev.ContentBlockStart)
		case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.Delta.ToolUse != nil:
			if ev.ContentBlockDelta.ContentBlockIndex != 1 {
				t.Fatalf("tool input delta %+v, want block 1", ev.ContentBlockDelta)
			}
			input.WriteString(ev.ContentBlockDelta.Delta.ToolUse.Input)
		case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.ContentBlockIndex != 0:
			t.Fatalf("text delta %+v, want block 0", ev.ContentBlockDelta)
		case ev.ContentBlockStop != nil:
			stops[ev.ContentBlockStop.ContentBlockIndex] = true
		case ev.MessageStop != nil:
			stop = ev.MessageStop
		}
	}
	if text, _ := deltaText(evs); text != "Checking the weather." {
		t.Fatalf("text %q", text)
	}
	if len(starts) != 1 || starts[0].ContentBlockIndex != 1 || starts[0].Start.ToolUse == nil ||
		*starts[0].Start.ToolUse != (bus.ToolUseStart{ToolUseID: "tu-1", Name: "get_weather"}) {
		t.Fatalf("contentBlockStart events %+v, want one for tu-1 get_weather at block 1", starts)
	}
	if input.String() != `{"city":"Oslo"}` {
		t.Fatalf("tool input %q", input.String())
	}
	if !stops[0] || !stops[1] || len(stops) != 2 {
		t.Fatalf("stopped blocks %v, want 0 and 1", stops)
	}
	if stop == nil || stop.StopReason != "tool_use" {
		t.Fatalf("messageStop %+v, want tool_use", stop)
	}
	if md := evs[len(evs)-1]; md.Metadata == nil || md.Metadata.Usage.InputTokens != 30 || md.Metadata.Usage.OutputTokens != 12 {
		t.Fatalf("last event %+v, want metadata with usage 30/12", md)
	}

	// The tools reached Bedrock.
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream requests %v", paths(reqs))
	}
	b, _ := json.Marshal(reqs[0].Body["toolConfig"])
	if want := `{"toolChoice":{"any":{}},"tools":[{"toolSpec":{"inputSchema":{"json":{"properties":{"city":{"type":"string"}},"type":"object"}},"name":"get_weather"}}]}`; string(b) != want {
		t.Fatalf("upstream toolConfig %s, want %s", b, want)
	}
}

func TestBedrockHTTP429RetriesThenFallsBack(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"from", " backup"},
		Usage:  &providertest.Usage{InputTokens: 4, OutputTokens: 2},
	})
	defer fake.Close()
	fake.Push(providertest.Reply{Status: 429}, providertest.Reply{Status: 429})
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	bob := user("bob")
	sub := h.listen(h.subj.Outbound(bob.ChannelID))
	h.publish(bob, "req-429", modelRequest("claude", "hi"), nil)
	checkAnswer(t, answer(t, sub), "req-429", "conv-1", "from backup", "end_turn")
	got := paths(fake.Requests())
	want := []string{"/model/anthropic.claude-v1/converse-stream", "/model/anthropic.claude-v1/converse-stream", "/model/anthropic.claude-backup/converse-stream"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("upstream calls %v, want %v", got, want)
	}
	rec, _ := h.usageRecord("acme", "req-429")
	// Priced at the backup's $1/$5.
	if rec.Status != bus.UsageStatusOK || rec.ModelID != "claude-backup" || rec.CostMicroUSD != 4*1+2*5 || rec.OutputTokens != 2 {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestBedrockThrottlingMidStream(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks:   []string{"partial", " answer", " never"},
		Throttle: true, ThrottleAfter: 2,
	})
	defer fake.Close()
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	carol := user("carol")
	sub := h.listen(h.subj.Outbound(carol.ChannelID))
	h.publish(carol, "req-mid", modelRequest("claude", "hi"), nil)
	evs := answer(t, sub)
	text, deltas := deltaText(evs)
	last := evs[len(evs)-1]
	if text != "partial answer" || deltas != 2 || last.Error == nil || last.Error.Type != bus.ErrTypeUpstreamThrottled || last.Error.RequestID != "req-mid" {
		t.Fatalf("events %+v", evs)
	}
	if !strings.Contains(last.Error.Message, "ThrottlingException") {
		t.Fatalf("error message %q does not name the exception", last.Error.Message)
	}
	// Nothing is retried once tokens reached the client.
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("%d upstream calls, want 1", n)
	}
	rec, _ := h.usageRecord("acme", "req-mid")
	// No metadata event: output is estimated from "partial answer" (14 bytes / 4).
	if rec.Status != bus.UsageStatusError || !rec.Estimated || rec.OutputTokens != 4 || rec.CostMicroUSD == 0 {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestBedrockThrottlingBeforeFirstTokenRetried(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"second", " try"},
		Usage:  &providertest.Usage{InputTokens: 3, OutputTokens: 2},
	})
	defer fake.Close()
	fake.Push(providertest.Reply{Chunks: []string{"x"}, Throttle: true, ThrottleAfter: 0})
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	dan := user("dan")
	sub := h.listen(h.subj.Outbound(dan.ChannelID))
	h.publish(dan, "req-retry", modelRequest("claude", "hi"), nil)
	checkAnswer(t, answer(t, sub), "req-retry", "conv-1", "second try", "end_turn")
	if got := paths(fake.Requests()); len(got) != 2 || got[1] != "/model/anthropic.claude-v1/converse-stream" {
		t.Fatalf("upstream calls %v, want the same model twice", got)
	}
	rec, _ := h.usageRecord("acme", "req-retry")
	if rec.ModelID != "claude" || rec.Status != bus.UsageStatusOK {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestBedrockAllThrottled(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Status: 429, RetryAfter: "0"})
	defer fake.Close()
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	erin := user("erin")
	sub := h.listen(h.subj.Outbound(erin.ChannelID))
	h.publish(erin, "req-all", modelRequest("claude", "hi"), nil)
	evs := answer(t, sub)
	last := evs[len(evs)-1]
	if last.Error == nil || last.Error.Type != bus.ErrTypeUpstreamThrottled || last.Error.Details["attempts"] != float64(4) || last.Error.Details["upstreamStatus"] != float64(429) {
		t.Fatalf("events %+v", evs)
	}
	if n := len(fake.Requests()); n != 4 {
		t.Fatalf("%d upstream calls, want 2 per model", n)
	}
	rec, _ := h.usageRecord("acme", "req-all")
	// Nothing was produced: nothing is charged.
	if rec.Status != bus.UsageStatusError || rec.OutputTokens != 0 || rec.InputTokens != 0 || rec.CostMicroUSD != 0 {
		t.Fatalf("usage record %+v", rec)
	}
}

// openAIConfig is a chat config with one OpenAI-compatible provider.
func openAIConfig(fake *providertest.OpenAI) chat.Config {
	return chat.Config{
		Providers: []chat.ProviderConfig{{Name: "oa", Type: chat.ProviderTypeOpenAI, BaseURL: fake.URL, APIKey: "sk-test"}},
		Models: []chat.Model{
			{ID: "gpt", Provider: "oa", UpstreamModel: "gpt-4o-mini", DefaultMaxTokens: 100, MaxTokens: 1000,
				Price: chat.Price{InputPerMillion: 2, OutputPerMillion: 8, CachedInputPerMillion: 1}, Fallbacks: []string{"echo"}},
			{ID: "echo", Provider: chat.ProviderEcho, DefaultMaxTokens: 100, MaxTokens: 1000},
		},
		RetryAttempts: 2,
		RetryBackoff:  time.Millisecond,
	}
}

func TestOpenAIStream(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{
		Chunks: []string{"Hi", " from", " upstream"},
		Usage:  &providertest.Usage{InputTokens: 10, OutputTokens: 3, CacheReadInputTokens: 4},
	})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	fay := user("fay")
	sub := h.listen(h.subj.Outbound(fay.ChannelID))
	h.publish(fay, "req-oa", modelRequest("gpt", "hello", func(r *bus.ChatRequest) {
		r.System = []bus.ContentBlock{{Text: "sys"}}
		seed, presence, frequency := int64(7), 0.5, -0.25
		r.InferenceConfig = &bus.InferenceConfig{Seed: &seed, PresencePenalty: &presence, FrequencyPenalty: &frequency}
	}), nil)
	md := checkAnswer(t, answer(t, sub), "req-oa", "conv-1", "Hi from upstream", "end_turn")
	if u := md.Metadata.Usage; u.InputTokens != 10 || u.OutputTokens != 3 || u.Estimated {
		t.Fatalf("usage %+v", u)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer sk-test" {
		t.Fatalf("requests %+v", reqs)
	}
	b, _ := json.Marshal(reqs[0].Body)
	for _, want := range []string{`"stream":true`, `"stream_options":{"include_usage":true}`, `"model":"gpt-4o-mini"`, `"max_tokens":100`,
		`{"content":"sys","role":"system"}`, `{"content":"hello","role":"user"}`, `"seed":7`, `"presence_penalty":0.5`, `"frequency_penalty":-0.25`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("upstream body %s lacks %s", b, want)
		}
	}
	// 6 uncached input at $2/M + 4 cached at $1/M + 3 output at $8/M.
	rec, _ := h.usageRecord("acme", "req-oa")
	if rec.CostMicroUSD != 6*2+4*1+3*8 || rec.Provider != "oa" {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestOpenAINoUsageIsEstimated(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"abcd", "efgh"}})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	gus := user("gus")
	sub := h.listen(h.subj.Outbound(gus.ChannelID))
	h.publish(gus, "req-est", modelRequest("gpt", "12345678"), nil)
	md := checkAnswer(t, answer(t, sub), "req-est", "conv-1", "abcdefgh", "end_turn")
	if u := md.Metadata.Usage; !u.Estimated || u.OutputTokens != 2 || u.InputTokens != 2 {
		t.Fatalf("usage %+v, want estimated 2/2", u)
	}
	rec, _ := h.usageRecord("acme", "req-est")
	if !rec.Estimated {
		t.Fatalf("usage record %+v not marked estimated", rec)
	}
}

func TestOpenAIServerErrorFallsBackToEcho(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Status: 502})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	hal := user("hal")
	sub := h.listen(h.subj.Outbound(hal.ChannelID))
	h.publish(hal, "req-5xx", modelRequest("gpt", "echo me please"), nil)
	checkAnswer(t, answer(t, sub), "req-5xx", "conv-1", "echo me please", "end_turn")
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("%d upstream calls, want 2", n)
	}
	rec, _ := h.usageRecord("acme", "req-5xx")
	if rec.ModelID != "echo" || rec.Provider != "echo" {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestOpenAIRejectedIsNotRetried(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Status: 400})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	ian := user("ian")
	sub := h.listen(h.subj.Outbound(ian.ChannelID))
	h.publish(ian, "req-400", modelRequest("gpt", "x"), nil)
	evs := answer(t, sub)
	last := evs[len(evs)-1]
	if last.Error == nil || last.Error.Type != bus.ErrTypeUpstreamError || last.Error.Details["upstreamStatus"] != float64(400) {
		t.Fatalf("events %+v", evs)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("%d upstream calls, want 1", n)
	}
}

func TestFirstTokenTimeoutFallsBack(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Hang: true})
	defer fake.Close()
	cfg := openAIConfig(fake)
	cfg.RetryAttempts = 1
	cfg.FirstTokenTimeout = 50 * time.Millisecond
	h := newHarness(t, cfg, contractOpts{})
	jo := user("jo")
	sub := h.listen(h.subj.Outbound(jo.ChannelID))
	h.publish(jo, "req-slow", modelRequest("gpt", "too slow"), nil)
	checkAnswer(t, answer(t, sub), "req-slow", "conv-1", "too slow", "end_turn")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !fake.WaitFor(ctx, func(_, cancelled int) bool { return cancelled == 1 }) {
		t.Fatal("the timed-out upstream request was never cancelled")
	}
}

func TestCancelEndsUpstreamAndMetersPartialUsage(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"one", " two", " three"}, Hang: true})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	kim := user("kim")
	sub := h.listen(h.subj.Outbound(kim.ChannelID))
	h.publish(kim, "req-cxl", modelRequest("gpt", "go on forever"), nil)
	for range 4 { // messageStart and three deltas
		next(t, sub)
	}
	if err := h.nc.PublishMsg(&nats.Msg{Subject: h.subj.Cancel("req-cxl"), Header: nats.Header{bus.HeaderIdentity: {idHeader(t, kim)}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !fake.WaitFor(ctx, func(_, cancelled int) bool { return cancelled == 1 }) {
		t.Fatal("the upstream request's context never ended")
	}
	evs := answer(t, sub)
	n := len(evs)
	if evs[n-2].MessageStop == nil || evs[n-2].MessageStop.StopReason != "cancelled" {
		t.Fatalf("tail %+v", evs)
	}
	rec, _ := h.usageRecord("acme", "req-cxl")
	// "one two three" is 13 bytes: 4 estimated tokens.
	if rec.Status != bus.UsageStatusCancelled || rec.OutputTokens != 4 || !rec.Estimated || rec.CostMicroUSD == 0 {
		t.Fatalf("usage record %+v", rec)
	}
}

func TestModelsEndpoint(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, err := bus.Request[bus.ModelsResponse](ctx, h.nc, h.subj.ChatModels(), bus.ModelsRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Models) != 2 || resp.Models[0].ID != "gpt" || resp.Models[0].Provider != "oa" || resp.Models[0].OutputPerMillion != 8 ||
		resp.Models[0].Fallbacks[0] != "echo" || resp.Models[1].ID != "echo" {
		t.Fatalf("models %+v", resp.Models)
	}
}

func TestContextWindow(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{})
	defer fake.Close()
	cfg := bedrockConfig(fake)
	cfg.Models[0].ContextWindow = 1000
	h := newHarness(t, cfg, contractOpts{})
	lu := user("lu")
	sub := h.listen(h.subj.Outbound(lu.ChannelID))
	h.publish(lu, "req-ctx", modelRequest("claude", strings.Repeat("x", 4000), func(r *bus.ChatRequest) {
		r.InferenceConfig = &bus.InferenceConfig{MaxTokens: 500}
	}), nil)
	ev := next(t, sub)
	if ev.Error == nil || ev.Error.Type != bus.ErrTypeValidation || !strings.Contains(ev.Error.Message, "context window of 1000") {
		t.Fatalf("event %+v", ev)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}
}

func TestProviderConcurrencyLimit(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"a", " b", " c"}, ChunkDelay: 20 * time.Millisecond})
	defer fake.Close()
	cfg := openAIConfig(fake)
	cfg.Providers[0].MaxConcurrent = 1
	h := newHarness(t, cfg, contractOpts{noCache: true})
	var subs []*nats.Subscription
	for i := range 3 {
		u := user(fmt.Sprintf("u%d", i))
		subs = append(subs, h.listen(h.subj.Outbound(u.ChannelID)))
		h.publish(u, fmt.Sprintf("req-lim-%d", i), modelRequest("gpt", "hi"), nil)
	}
	for i, sub := range subs {
		checkAnswer(t, answer(t, sub), fmt.Sprintf("req-lim-%d", i), "conv-1", "a b c", "end_turn")
	}
	if n, peak := len(fake.Requests()), fake.MaxInFlight(); n != 3 || peak != 1 {
		t.Fatalf("%d upstream calls, %d at once; want 3 calls one at a time", n, peak)
	}
}

func TestBedrockGuardrailIntervened(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks:     []string{"Sorry, I can't help with that."},
		StopReason: "guardrail_intervened",
		Usage:      &providertest.Usage{InputTokens: 5, OutputTokens: 7},
	})
	defer fake.Close()
	h := newHarness(t, bedrockConfig(fake), contractOpts{})
	mo := user("mo")
	sub := h.listen(h.subj.Outbound(mo.ChannelID))
	h.publish(mo, "req-gr", modelRequest("claude", "something bad"), nil)
	evs := answer(t, sub)
	last := evs[len(evs)-1]
	if last.Error == nil || last.Error.Type != bus.ErrTypeGuardrailIntervened || last.Error.Details["stopReason"] != "guardrail_intervened" {
		t.Fatalf("events %+v", evs)
	}
	rec, _ := h.usageRecord("acme", "req-gr")
	if rec.InputTokens != 5 || rec.OutputTokens != 7 || rec.CostMicroUSD != 5*3+7*15 {
		t.Fatalf("usage record %+v", rec)
	}
	if _, _, puts := h.c.snapshot(); len(puts) != 0 {
		t.Fatalf("blocked answer cached: %+v", puts)
	}
}

func TestProviderConfigValidate(t *testing.T) {
	t.Parallel()
	good := chat.Config{
		Providers: []chat.ProviderConfig{{Name: "oa", Type: chat.ProviderTypeOpenAI, BaseURL: "http://x/v1"}},
		Models:    []chat.Model{{ID: "gpt", Provider: "oa", MaxTokens: 10, DefaultMaxTokens: 5}},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*chat.Config){
		"Providers[0].Name":                              func(c *chat.Config) { c.Providers[0].Name = "echo" },
		"Providers[0].Type":                              func(c *chat.Config) { c.Providers[0].Type = "gcp" },
		"Providers[0].BaseURL":                           func(c *chat.Config) { c.Providers[0].BaseURL = "" },
		"Providers[0].MaxConcurrent":                     func(c *chat.Config) { c.Providers[0].MaxConcurrent = -1 },
		"Providers[0].ImageURLs is only for openai":      func(c *chat.Config) { c.Providers[0].Type, c.Providers[0].ImageURLs = chat.ProviderTypeBedrock, true },
		"Models[0].Provider":                             func(c *chat.Config) { c.Models[0].Provider = "nope" },
		"Models[0].Fallbacks[0]":                         func(c *chat.Config) { c.Models[0].Fallbacks = []string{"missing"} },
		"is the model itself":                            func(c *chat.Config) { c.Models[0].Fallbacks = []string{"gpt"} },
		"Models[0].Price":                                func(c *chat.Config) { c.Models[0].Price.OutputPerMillion = -1 },
		"Models[0].MaxTokens 10 exceeds ContextWindow 5": func(c *chat.Config) { c.Models[0].ContextWindow = 5 },
		"Models[0].Guardrail":                            func(c *chat.Config) { c.Models[0].Guardrail = &chat.Guardrail{ID: "g"} },
		"RetryAttempts":                                  func(c *chat.Config) { c.RetryAttempts = chat.MaxRetryAttempts + 1 },
		"FirstTokenTimeout":                              func(c *chat.Config) { c.FirstTokenTimeout = -time.Second },
	}
	for want, mod := range cases {
		c := good
		c.Providers = append([]chat.ProviderConfig(nil), good.Providers...)
		c.Models = append([]chat.Model(nil), good.Models...)
		mod(&c)
		err := c.Validate()
		if !errors.Is(err, chat.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestPriceCost(t *testing.T) {
	t.Parallel()
	p := chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CachedInputPerMillion: 0.3, CacheWriteInputPerMillion: 3.75, CacheWrite1hInputPerMillion: 6}
	// Without a cache write price, writes cost the input price; without a
	// 1-hour one, 1-hour writes cost the (5-minute) write price.
	noWrite := chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CachedInputPerMillion: 0.3}
	no1h := chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CacheWriteInputPerMillion: 3.75}
	cases := []struct {
		p                                    chat.Price
		in, cached, written, hour, out, want int64
	}{
		{p, 0, 0, 0, 0, 0, 0},
		{p, 1000, 0, 0, 0, 100, 3000 + 1500},
		{p, 1000, 400, 0, 0, 0, 600*3 + 120},
		{p, 1, 1, 0, 0, 0, 1},   // 0.3 rounds up
		{p, 10, 50, 0, 0, 0, 3}, // cached beyond input is clamped
		{p, 1000, 0, 400, 0, 0, 600*3 + 1500},
		{p, 1000, 200, 400, 0, 10, 400*3 + 60 + 1500 + 150},
		{p, 1, 0, 1, 0, 0, 4},    // 3.75 rounds up
		{p, 10, 4, 50, 0, 0, 24}, // writes beyond the uncached input are clamped: 1.2 + 22.5 rounds up
		{noWrite, 1000, 200, 400, 0, 0, 800*3 + 60},
		{p, 1000, 0, 400, 100, 0, 600*3 + 300*3.75 + 100*6},
		{p, 1000, 0, 400, 900, 0, 600*3 + 400*6}, // 1-hour writes beyond the writes are clamped
		{no1h, 1000, 0, 400, 100, 0, 600*3 + 400*3.75},
		{noWrite, 1000, 0, 400, 100, 0, 1000 * 3},
	}
	for _, tc := range cases {
		if got := tc.p.CostMicroUSD(tc.in, tc.cached, tc.written, tc.hour, tc.out); got != tc.want {
			t.Errorf("%+v.CostMicroUSD(%d, %d, %d, %d, %d) = %d, want %d", tc.p, tc.in, tc.cached, tc.written, tc.hour, tc.out, got, tc.want)
		}
	}
}
