package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats.go"
)

// checkAnswer asserts the exact shape of a complete answer and returns its
// metadata event.
func checkAnswer(t *testing.T, evs []bus.Event, reqID, convID, text, stopReason string) bus.Event {
	t.Helper()
	if len(evs) < 6 {
		t.Fatalf("only %d events: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		if ev.Seq != i || ev.RequestID != reqID || ev.ConversationID != convID {
			t.Fatalf("event %d has seq %d requestId %q conversationId %q", i, ev.Seq, ev.RequestID, ev.ConversationID)
		}
		if ev.Error != nil {
			t.Fatalf("event %d is an error: %+v", i, ev.Error)
		}
	}
	n := len(evs)
	if evs[0].MessageStart == nil || evs[0].MessageStart.Role != "assistant" {
		t.Fatalf("first event %+v, want messageStart assistant", evs[0])
	}
	for _, ev := range evs[1 : n-3] {
		if ev.ContentBlockDelta == nil || ev.ContentBlockDelta.ContentBlockIndex != 0 {
			t.Fatalf("middle event %+v, want contentBlockDelta 0", ev)
		}
	}
	if got, deltas := deltaText(evs); got != text || deltas < 2 {
		t.Fatalf("deltas %q (%d), want %q in >= 2", got, deltas, text)
	}
	if evs[n-3].ContentBlockStop == nil {
		t.Fatalf("event %d %+v, want contentBlockStop", n-3, evs[n-3])
	}
	if evs[n-2].MessageStop == nil || evs[n-2].MessageStop.StopReason != stopReason {
		t.Fatalf("event %d %+v, want messageStop %s", n-2, evs[n-2], stopReason)
	}
	md := evs[n-1]
	if md.Metadata == nil || md.TokenUsage == nil {
		t.Fatalf("last event %+v, want metadata with tokenUsage", md)
	}
	return md
}

func TestEchoAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	alice := user("alice")
	sub := h.listen(h.subj.Outbound(alice.ChannelID))
	h.publish(alice, "req-1", request("hello there, echo world"), nil)

	evs := answer(t, sub)
	md := checkAnswer(t, evs, "req-1", "conv-1", "hello there, echo world", "end_turn")
	want := bus.Usage{InputTokens: 4, OutputTokens: 4, TotalTokens: 8}
	if md.Metadata.Usage != want || md.TokenUsage.Request != want {
		t.Fatalf("usage %+v / %+v, want %+v", md.Metadata.Usage, md.TokenUsage.Request, want)
	}
	if md.Metadata.Metrics.LatencyMs < 0 || len(md.TokenUsage.Windows) != 1 || md.TokenUsage.Windows[0].Used != 8 {
		t.Fatalf("metrics %+v windows %+v", md.Metadata.Metrics, md.TokenUsage.Windows)
	}
	// The raw final event has the documented JSON shape.
	var raw map[string]any
	b, _ := json.Marshal(md)
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"metadata", "tokenUsage", "conversationId", "requestId", "seq"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("final event %s lacks %q", b, k)
		}
	}

	reserves, settles, _ := h.c.snapshot()
	if len(reserves) != 1 || reserves[0].RequestID != "req-1" || reserves[0].InputTokens != 4 ||
		reserves[0].MaxOutputTokens != int64(chat.DefaultModels()[0].DefaultMaxTokens) || reserves[0].Cached ||
		reserves[0].Identity.Sub != "alice" || reserves[0].ModelID != "echo" {
		t.Fatalf("reserves %+v", reserves)
	}
	if len(settles) != 1 || settles[0].Usage != want {
		t.Fatalf("settles %+v", settles)
	}

	rec, hdr := h.usageRecord("acme", "req-1")
	if hdr.Get(bus.HeaderMsgID) != "req-1" {
		t.Fatalf("usage record Nats-Msg-Id = %q", hdr.Get(bus.HeaderMsgID))
	}
	if rec.Status != bus.UsageStatusOK || rec.Sub != "alice" || rec.Tenant != "acme" || rec.ChannelID != "alice" ||
		rec.ModelID != "echo" || rec.Provider != "echo" || rec.ConversationID != "conv-1" ||
		rec.InputTokens != 4 || rec.OutputTokens != 4 || rec.TotalTokens != 8 || rec.Cached ||
		rec.StartedAt.IsZero() || rec.FinishedAt.Before(rec.StartedAt) {
		t.Fatalf("usage record %+v", rec)
	}

	// The complete answer is stored in the cache under the user's scope.
	eventually(t, "cache put", func() bool { _, _, p := h.c.snapshot(); return len(p) == 1 })
	_, _, puts := h.c.snapshot()
	var req bus.ChatRequest
	_ = json.Unmarshal(request("hello there, echo world"), &req)
	if puts[0].Key != bus.CacheKey("user:"+alice.Subject(), "echo", req) || puts[0].Entry.Text != "hello there, echo world" ||
		puts[0].Entry.ModelID != "echo" || puts[0].Entry.Usage != want {
		t.Fatalf("cache put %+v", puts[0])
	}
}

func TestDoubleEncodedPayload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{DisableCache: true}, contractOpts{noCache: true})
	bob := user("bob")
	sub := h.listen(h.subj.Outbound(bob.ChannelID))
	once, _ := json.Marshal(string(request("two layers deep")))
	twice, _ := json.Marshal(string(once))
	h.publish(bob, "req-2", twice, nil)
	checkAnswer(t, answer(t, sub), "req-2", "conv-1", "two layers deep", "end_turn")
}

func TestMaxTokensAndAlias(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	carol := user("carol")
	sub := h.listen(h.subj.Outbound(carol.ChannelID))
	h.publish(carol, "req-3", request("one two three four five", func(r *bus.ChatRequest) {
		r.ModelID = "gatehouse-echo"
		r.InferenceConfig = &bus.InferenceConfig{MaxTokens: 3}
	}), nil)
	md := checkAnswer(t, answer(t, sub), "req-3", "conv-1", "one two three", "max_tokens")
	if md.Metadata.Usage.OutputTokens != 3 || md.Metadata.Usage.InputTokens != 5 {
		t.Fatalf("usage %+v", md.Metadata.Usage)
	}
	rec, _ := h.usageRecord("acme", "req-3")
	if rec.ModelID != "echo" || rec.OutputTokens != 3 {
		t.Fatalf("usage record %+v", rec)
	}
	// A truncated answer is not cached.
	reserves, _, puts := h.c.snapshot()
	if len(puts) != 0 || reserves[0].MaxOutputTokens != 3 {
		t.Fatalf("puts %+v reserves %+v", puts, reserves)
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{MaxMessages: 3, MaxInputBytes: 100}, contractOpts{})
	text := func(role, s string) bus.Message {
		return bus.Message{Role: role, Content: []bus.ContentBlock{{Text: s}}}
	}
	cases := []struct {
		name    string
		body    string
		errType string
		want    string
	}{
		{"no messages", `{"modelId":"echo"}`, bus.ErrTypeValidation, "messages is empty"},
		{"empty text", string(request("", func(r *bus.ChatRequest) { r.Messages = []bus.Message{text("user", "  ")} })), bus.ErrTypeValidation, "messages[0].content[0].text is empty"},
		{"no content", `{"modelId":"echo","messages":[{"role":"user"}]}`, bus.ErrTypeValidation, "messages[0].content is empty"},
		{"bad role", string(request("x", func(r *bus.ChatRequest) { r.Messages = []bus.Message{text("system", "a"), text("user", "b")} })), bus.ErrTypeValidation, "messages[0].role"},
		{"last not user", string(request("x", func(r *bus.ChatRequest) { r.Messages = append(r.Messages, text("assistant", "a")) })), bus.ErrTypeValidation, "messages[1].role"},
		{"too many", string(request("x", func(r *bus.ChatRequest) {
			r.Messages = []bus.Message{text("user", "a"), text("assistant", "b"), text("user", "c"), text("assistant", "d"), text("user", "e")}
		})), bus.ErrTypeValidation, "messages has 5 entries, more than the limit of 3"},
		{"too big", string(request(strings.Repeat("x", 101))), bus.ErrTypeValidation, "limit of 100"},
		{"max tokens", string(request("x", func(r *bus.ChatRequest) { r.InferenceConfig = &bus.InferenceConfig{MaxTokens: 100000} })), bus.ErrTypeValidation, "inferenceConfig.maxTokens"},
		{"presence penalty", string(request("x", func(r *bus.ChatRequest) { v := 2.5; r.InferenceConfig = &bus.InferenceConfig{PresencePenalty: &v} })), bus.ErrTypeValidation, "inferenceConfig.presencePenalty is 2.5; it must be within -2..2"},
		{"frequency penalty", string(request("x", func(r *bus.ChatRequest) { v := -3.0; r.InferenceConfig = &bus.InferenceConfig{FrequencyPenalty: &v} })), bus.ErrTypeValidation, "inferenceConfig.frequencyPenalty is -3; it must be within -2..2"},
		{"negative max tokens", string(request("x", func(r *bus.ChatRequest) { r.InferenceConfig = &bus.InferenceConfig{MaxTokens: -1} })), bus.ErrTypeValidation, "inferenceConfig.maxTokens"},
		{"no model", string(request("x", func(r *bus.ChatRequest) { r.ModelID = "" })), bus.ErrTypeValidation, "modelId is required"},
		{"unknown model", string(request("x", func(r *bus.ChatRequest) { r.ModelID = "gpt-9" })), bus.ErrTypeModelNotFound, `modelId "gpt-9"`},
		{"wrong type", `{"messages":"hi","modelId":"echo"}`, bus.ErrTypeValidation, "messages"},
		{"stop with messages", string(request("x", func(r *bus.ChatRequest) { r.Stop = "abc" })), bus.ErrTypeValidation, "stop"},
		{"bad stop id", `{"stop":"a.b"}`, bus.ErrTypeValidation, "stop"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			who := user("v" + strings.Repeat("x", i))
			sub := h.listen(h.subj.Outbound(who.ChannelID))
			reqID := "val-" + strings.ReplaceAll(tc.name, " ", "-")
			h.publish(who, reqID, []byte(tc.body), nil)
			ev := next(t, sub)
			if ev.Error == nil || ev.Error.Type != tc.errType || !strings.Contains(ev.Error.Message, tc.want) {
				t.Fatalf("event %+v, want %s naming %q", ev.Error, tc.errType, tc.want)
			}
			if ev.Seq != 0 || ev.RequestID != reqID || ev.Error.RequestID != reqID {
				t.Fatalf("event ids: %+v", ev)
			}
		})
	}
	t.Cleanup(func() {
		if reserves, _, _ := h.c.snapshot(); len(reserves) != 0 {
			t.Errorf("invalid requests reached meter: %+v", reserves)
		}
	})
}

func TestQuotaRefusal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	h.c.refusal = &bus.QuotaRefusal{
		QuotaWindow:       bus.QuotaWindow{Scope: "user", Window: "rolling24h", Metric: "totalTokens", Used: 1000, Limit: 1000, ResetsAt: "2030-01-01T00:00:00Z"},
		RetryAfterSeconds: 600,
	}
	dan := user("dan")
	sub := h.listen(h.subj.Outbound(dan.ChannelID))
	h.publish(dan, "req-q", request("please answer"), nil)
	ev := next(t, sub)
	e := ev.Error
	if e == nil || e.Type != bus.ErrTypeQuotaExceeded || ev.Seq != 0 || ev.ConversationID != "conv-1" {
		t.Fatalf("event %+v", ev)
	}
	for _, w := range []string{"user", "rolling24h", "totalTokens", "1000", "2030-01-01T00:00:00Z"} {
		if !strings.Contains(e.Message, w) {
			t.Errorf("message %q does not mention %q", e.Message, w)
		}
	}
	d := e.Details
	if d["scope"] != "user" || d["window"] != "rolling24h" || d["metric"] != "totalTokens" || d["used"] != float64(1000) ||
		d["limit"] != float64(1000) || d["resetsAt"] != "2030-01-01T00:00:00Z" || d["retryAfterSeconds"] != float64(600) {
		t.Fatalf("details %+v", d)
	}
	if _, settles, _ := h.c.snapshot(); len(settles) != 0 {
		t.Fatalf("refused request settled: %+v", settles)
	}
}

func TestMeterUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{MeterTimeout: 200 * time.Millisecond}, contractOpts{noMeter: true})
	erin := user("erin")
	sub := h.listen(h.subj.Outbound(erin.ChannelID))
	h.publish(erin, "req-m", request("anyone there"), nil)
	ev := next(t, sub)
	if ev.Error == nil || ev.Error.Type != bus.ErrTypeInternal || ev.Error.Message != "metering is unavailable; try again" {
		t.Fatalf("event %+v", ev)
	}
	// Nothing was streamed: the error is the whole answer.
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("unexpected event after the error: %s", m.Data)
	}
}

func TestCacheHit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	fay := user("fay")
	body := request("what is the answer")
	var req bus.ChatRequest
	_ = json.Unmarshal(body, &req)
	cached := bus.Usage{InputTokens: 4, OutputTokens: 3, TotalTokens: 7}
	h.c.mu.Lock()
	h.c.entries[bus.CacheKey("user:"+fay.Subject(), "echo", req)] = bus.CacheEntry{ModelID: "echo", Text: "it is 42", Usage: cached}
	h.c.mu.Unlock()

	sub := h.listen(h.subj.Outbound(fay.ChannelID))
	h.publish(fay, "req-c", body, nil)
	md := checkAnswer(t, answer(t, sub), "req-c", "conv-1", "it is 42", "end_turn")
	want := cached
	want.Cached = true
	if md.Metadata.Usage != want {
		t.Fatalf("usage %+v, want %+v", md.Metadata.Usage, want)
	}
	reserves, settles, _ := h.c.snapshot()
	if len(reserves) != 1 || !reserves[0].Cached || len(settles) != 1 || !settles[0].Usage.Cached {
		t.Fatalf("meter saw reserves %+v settles %+v", reserves, settles)
	}
	rec, _ := h.usageRecord("acme", "req-c")
	if !rec.Cached || rec.Status != bus.UsageStatusOK || rec.OutputTokens != 3 {
		t.Fatalf("usage record %+v", rec)
	}

	// Another user asking the same is a miss: the scope is in the key.
	gus := user("gus")
	sub2 := h.listen(h.subj.Outbound(gus.ChannelID))
	h.publish(gus, "req-c2", body, nil)
	checkAnswer(t, answer(t, sub2), "req-c2", "conv-1", "what is the answer", "end_turn")
	// The hit itself was not stored again; only gus's fresh answer was.
	eventually(t, "cache put", func() bool { _, _, p := h.c.snapshot(); return len(p) == 1 })
	if _, _, puts := h.c.snapshot(); puts[0].Entry.Text != "what is the answer" {
		t.Fatalf("puts %+v", puts)
	}
}

func TestStopCancels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{EchoDelay: 20 * time.Millisecond}, contractOpts{})
	hal := user("hal")
	sub := h.listen(h.subj.Outbound(hal.ChannelID))
	long := strings.TrimSpace(strings.Repeat("word ", 500))
	h.publish(hal, "req-long", request(long), nil)
	for range 3 { // messageStart and two deltas: the generation is running
		next(t, sub)
	}

	// Someone else's cancel is ignored.
	mallory := user("mallory")
	if err := h.nc.PublishMsg(&nats.Msg{Subject: h.subj.Cancel("req-long"), Header: nats.Header{bus.HeaderIdentity: {idHeader(t, mallory)}}}); err != nil {
		t.Fatal(err)
	}
	// The owner's stop message, through INBOUND like the browser sends it.
	h.publish(hal, "req-stop", []byte(`{"stop":"req-long"}`), nil)

	var evs []bus.Event
	for {
		ev := next(t, sub)
		evs = append(evs, ev)
		if ev.Metadata != nil || ev.Error != nil {
			break
		}
	}
	n := len(evs)
	if n < 3 || evs[n-2].MessageStop == nil || evs[n-2].MessageStop.StopReason != "cancelled" || evs[n-3].ContentBlockStop == nil {
		t.Fatalf("tail of answer %+v", evs[max(0, n-3):])
	}
	_, deltas := deltaText(evs)
	deltas += 2
	usage := evs[n-1].Metadata.Usage
	if usage.OutputTokens != int64(deltas) || usage.OutputTokens >= 500 || usage.InputTokens != 500 {
		t.Fatalf("usage %+v after %d deltas", usage, deltas)
	}
	rec, _ := h.usageRecord("acme", "req-long")
	if rec.Status != bus.UsageStatusCancelled || rec.OutputTokens != int64(deltas) {
		t.Fatalf("usage record %+v, want cancelled with %d output tokens", rec, deltas)
	}
	if _, _, puts := h.c.snapshot(); len(puts) != 0 {
		t.Fatalf("cancelled answer cached: %+v", puts)
	}
}

func TestReplyTo(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	ivy := user("ivy")
	outbound := h.listen(h.subj.Outbound(ivy.ChannelID))
	reply := h.subj.Reply("edge-1", "req-r")
	sub := h.listen(reply)
	h.publish(ivy, "req-r", request("over http"), nats.Header{bus.HeaderReplyTo: {reply}})
	checkAnswer(t, answer(t, sub), "req-r", "conv-1", "over http", "end_turn")
	if m, err := outbound.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("event leaked to the outbound channel: %s", m.Data)
	}
}

func TestTerminated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	jay := user("jay")
	advisories := h.listen("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + h.subj.StreamInbound() + "." + bus.ConsumerChat)
	outbound := h.listen(h.subj.Outbound(jay.ChannelID))
	cases := []struct {
		name string
		hdr  nats.Header
	}{
		{"missing identity", nats.Header{bus.HeaderIdentity: nil}},
		{"garbage identity", nats.Header{bus.HeaderIdentity: {"%%%"}}},
		{"missing request id", nats.Header{bus.HeaderRequestID: nil}},
		{"bad request id", nats.Header{bus.HeaderRequestID: {"a.b"}}},
		{"foreign reply-to", nats.Header{bus.HeaderReplyTo: {"gh.ch.Outbound-Messages.someone"}}},
		{"wildcard reply-to", nats.Header{bus.HeaderReplyTo: {"gh.reply.>"}}},
	}
	for i, tc := range cases {
		tc.hdr[bus.HeaderMsgID] = []string{"term-" + string(rune('a'+i))}
		h.publish(jay, "term-req", request("never answered"), tc.hdr)
	}
	for _, tc := range cases {
		if _, err := advisories.NextMsg(waitLimit); err != nil {
			t.Fatalf("%s: no termination advisory: %v", tc.name, err)
		}
	}
	if m, err := outbound.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("terminated request answered: %s", m.Data)
	}
	// An undecodable body is terminated too, and the client is told.
	h.publish(jay, "term-body", []byte(`{not json`), nil)
	if _, err := advisories.NextMsg(waitLimit); err != nil {
		t.Fatalf("undecodable body: no termination advisory: %v", err)
	}
	if ev := next(t, outbound); ev.Error == nil || ev.Error.Type != bus.ErrTypeValidation {
		t.Fatalf("event %+v", ev)
	}
}

func TestDrainCancelsInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{EchoDelay: 20 * time.Millisecond, DrainTimeout: 50 * time.Millisecond}, contractOpts{})
	kim := user("kim")
	sub := h.listen(h.subj.Outbound(kim.ChannelID))
	h.publish(kim, "req-drain", request(strings.TrimSpace(strings.Repeat("slow ", 1000))), nil)
	next(t, sub) // messageStart: running
	h.stop()     // Run returns only after the request was cancelled and recorded
	rec, _ := h.usageRecord("acme", "req-drain")
	if rec.Status != bus.UsageStatusCancelled || rec.OutputTokens >= 1000 {
		t.Fatalf("usage record %+v", rec)
	}
	evs := answer(t, sub)
	if stop := evs[len(evs)-2].MessageStop; stop == nil || stop.StopReason != "cancelled" {
		t.Fatalf("tail %+v", evs[len(evs)-2:])
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{Prefix: "tenant-x.gh"}, contractOpts{})
	lou := user("lou")
	sub := h.listen(h.subj.Outbound(lou.ChannelID))
	if !strings.HasPrefix(sub.Subject, "tenant-x.gh.") {
		t.Fatalf("subject %s", sub.Subject)
	}
	h.publish(lou, "req-p", request("prefixed subjects"), nil)
	checkAnswer(t, answer(t, sub), "req-p", "conv-1", "prefixed subjects", "end_turn")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	echo := chat.DefaultModels()[0]
	dup := echo
	dup.ID = "other"
	dup.Aliases = []string{"echo"}
	badProv := echo
	badProv.Provider = "bedrock"
	badMax := echo
	badMax.DefaultMaxTokens = echo.MaxTokens + 1
	cases := []struct {
		cfg  chat.Config
		want string
	}{
		{chat.Config{}, ""},
		{chat.Config{Prefix: "a b"}, "Prefix"},
		{chat.Config{Concurrency: -1}, "Concurrency"},
		{chat.Config{EchoDelay: -1}, "EchoDelay"},
		{chat.Config{MeterTimeout: -1}, "MeterTimeout"},
		{chat.Config{CacheTimeout: -1}, "CacheTimeout"},
		{chat.Config{MaxMessages: -1}, "MaxMessages"},
		{chat.Config{MaxInputBytes: -1}, "MaxInputBytes"},
		{chat.Config{MaxOutputTokens: -1}, "MaxOutputTokens"},
		{chat.Config{DrainTimeout: -1}, "DrainTimeout"},
		{chat.Config{AckWait: time.Millisecond}, "AckWait"},
		{chat.Config{Models: []chat.Model{}}, "Models is empty"},
		{chat.Config{Models: []chat.Model{echo, dup}}, `"echo" is used twice`},
		{chat.Config{Models: []chat.Model{badProv}}, "Models[0].Provider"},
		{chat.Config{Models: []chat.Model{badMax}}, "Models[0].DefaultMaxTokens"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if !errors.Is(err, chat.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want error naming %s", tc.cfg, err, tc.want)
		}
	}
	if _, err := chat.New(chat.Config{}, nil); !errors.Is(err, chat.ErrNilConn) {
		t.Errorf("New(nil) = %v", err)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	svc, err := chat.New(chat.Config{Logger: slog.New(slog.DiscardHandler)}, h.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := svc.Run(context.Background()); !errors.Is(err, chat.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v", err)
	}
}

// TestConcurrencyBound runs two slow requests through a replica that may
// process one at a time: every event of the first precedes the second's.
func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{Concurrency: 1, EchoDelay: 5 * time.Millisecond, DisableCache: true}, contractOpts{noCache: true})
	all := h.listen(h.subj.Outbound("*"))
	a, b := user("amy"), user("ben")
	h.publish(a, "req-a", request("one two three four five six"), nil)
	h.publish(b, "req-b", request("seven eight nine ten"), nil)
	var order []string
	finals := 0
	for finals < 2 {
		ev := next(t, all)
		order = append(order, ev.RequestID)
		if ev.Metadata != nil || ev.Error != nil {
			finals++
		}
	}
	first := order[0]
	switched := false
	for i, id := range order {
		if id != first {
			switched = true
		} else if switched {
			t.Fatalf("answers interleaved at event %d: %v", i, order)
		}
	}
}

// TestEarlyCancel cancels a request before it starts: it is answered with
// an immediate cancelled stop and recorded with no output.
func TestEarlyCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	max := user("max")
	sub := h.listen(h.subj.Outbound(max.ChannelID))
	if err := h.nc.PublishMsg(&nats.Msg{Subject: h.subj.Cancel("req-early"), Header: nats.Header{bus.HeaderIdentity: {idHeader(t, max)}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The cancel and the request travel on separate subscriptions: wait
	// until chat holds the cancel, or a busy machine may run the request
	// first and the test would see a whole answer.
	eventually(t, "the early cancel is held", func() bool { return chat.EarlyCancels(h.svc) == 1 })
	h.publish(max, "req-early", request("never mind"), nil)
	evs := answer(t, sub)
	if len(evs) != 4 || evs[2].MessageStop == nil || evs[2].MessageStop.StopReason != "cancelled" || evs[3].Metadata.Usage.OutputTokens != 0 {
		t.Fatalf("events %+v", evs)
	}
	rec, _ := h.usageRecord("acme", "req-early")
	if rec.Status != bus.UsageStatusCancelled || rec.OutputTokens != 0 || rec.InputTokens != 2 {
		t.Fatalf("usage record %+v", rec)
	}
}
