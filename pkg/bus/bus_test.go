package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

func TestSubjects(t *testing.T) {
	t.Parallel()
	s := bus.NewSubjects("")
	c, _ := channel.Parse("/Outbound-Messages/alice")
	checks := map[string]string{
		s.Channel(c):                         "gh.ch.Outbound-Messages.alice",
		s.Inbound("alice"):                   "gh.ch.Inbound-Messages.alice",
		s.Outbound("alice"):                  "gh.ch.Outbound-Messages.alice",
		s.InboundAll():                       "gh.ch.Inbound-Messages.>",
		s.Reply("e1", "r1"):                  "gh.reply.e1.r1",
		s.Usage(""):                          "gh.usage.v1.default",
		s.Usage("acme"):                      "gh.usage.v1.acme",
		s.Cancel("r1"):                       "gh.chat.v1.cancel.r1",
		s.StreamInbound():                    "INBOUND",
		s.StreamUsage():                      "USAGE",
		bus.NewSubjects("x.y").StreamUsage(): "X_Y_USAGE",
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if tok := bus.TenantToken("a.b c>"); strings.ContainsAny(tok, ". >*") || !bus.ValidToken(tok) {
		t.Errorf("TenantToken not safe: %q", tok)
	}
	if !bus.ValidPrefix("gh") || bus.ValidPrefix("a.>") || bus.ValidPrefix("") || bus.ValidPrefix("a..b") {
		t.Error("ValidPrefix wrong")
	}
	id := bus.NewID()
	if len(id) != 26 || !bus.ValidToken(id) || !channel.ValidSegment(id) || id == bus.NewID() {
		t.Errorf("NewID = %q", id)
	}
}

func TestDecodeChatRequest(t *testing.T) {
	t.Parallel()
	obj := `{"messages":[{"role":"user","content":[{"text":"hello there"}]}],"modelId":"echo","conversationId":"c1","reasoningEffort":"low"}`
	once, _ := json.Marshal(obj)
	twice, _ := json.Marshal(string(once))
	for _, in := range [][]byte{[]byte(obj), once, twice} {
		req, err := bus.DecodeChatRequest(in)
		if err != nil {
			t.Fatalf("decode %s: %v", in, err)
		}
		if req.ModelID != "echo" || req.ConversationID != "c1" || req.Messages[0].Content[0].Text != "hello there" || req.ReasoningEffort != bus.ReasoningEffortLow {
			t.Fatalf("decoded %+v", req)
		}
	}
	bad := map[string]string{
		`{"messages":1}`:                  "messages",
		`{"modelId":5}`:                   "modelId",
		`{"reasoningEffort":true}`:        "reasoningEffort",
		`not json`:                        "invalid",
		`"\"\\\"\\\\\\\"x\\\\\\\"\\\"\""`: "nested",
	}
	for in, want := range bad {
		_, err := bus.DecodeChatRequest([]byte(in))
		if !errors.Is(err, bus.ErrBadRequest) || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeChatRequest(%s) = %v, want error mentioning %q", in, err, want)
		}
	}
}

// TestValidReasoningEffort: exactly the listed efforts are valid.
func TestValidReasoningEffort(t *testing.T) {
	t.Parallel()
	for _, e := range bus.ReasoningEfforts {
		if !bus.ValidReasoningEffort(e) {
			t.Errorf("%q is listed but not valid", e)
		}
	}
	for _, e := range []string{"", "extreme", "High", " low", "medium "} {
		if bus.ValidReasoningEffort(e) {
			t.Errorf("%q is valid", e)
		}
	}
}

func TestCacheKeyScopes(t *testing.T) {
	t.Parallel()
	req := bus.ChatRequest{Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: " hi "}}}}}
	a := bus.CacheKey("user:alice", "m", req)
	req2 := req
	req2.ConversationID = "other"
	req2.Messages = []bus.Message{{Role: "USER", Content: []bus.ContentBlock{{Text: "hi"}}}}
	if a != bus.CacheKey("user:alice", "m", req2) {
		t.Error("normalisation differs")
	}
	if a == bus.CacheKey("user:bob", "m", req) || a == bus.CacheKey("user:alice", "n", req) {
		t.Error("scope or model not part of the key")
	}
	req.InferenceConfig = &bus.InferenceConfig{MaxTokens: 5}
	if a == bus.CacheKey("user:alice", "m", req) {
		t.Error("parameters not part of the key")
	}
}

func TestStreamsAndRequest(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := bus.NewSubjects("")
	for range 2 { // idempotent
		if err := bus.EnsureStreams(ctx, js, s, bus.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: s.Inbound("alice"), Data: []byte("{}"), Header: nats.Header{bus.HeaderMsgID: {"r1"}}})
	if err != nil || ack.Stream != "INBOUND" {
		t.Fatalf("publish to INBOUND: %v %+v", err, ack)
	}
	ack, _ = js.PublishMsg(ctx, &nats.Msg{Subject: s.Inbound("alice"), Data: []byte("{}"), Header: nats.Header{bus.HeaderMsgID: {"r1"}}})
	if ack == nil || !ack.Duplicate {
		t.Fatalf("duplicate not detected: %+v", ack)
	}

	type echo struct{ N int }
	svc, err := micro.AddService(nc, micro.Config{Name: "t", Version: "0.0.1", QueueGroup: "q"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	_ = svc.AddEndpoint("ok", micro.HandlerFunc(func(r micro.Request) {
		var in echo
		_ = json.Unmarshal(r.Data(), &in)
		bus.Respond(r, echo{N: in.N + 1})
	}), micro.WithEndpointSubject("t.ok"))
	_ = svc.AddEndpoint("fail", micro.HandlerFunc(func(r micro.Request) {
		_ = r.Error(bus.CodeForbidden, "nope", nil)
	}), micro.WithEndpointSubject("t.fail"))

	got, err := bus.Request[echo](ctx, nc, "t.ok", echo{N: 1}, nil)
	if err != nil || got.N != 2 {
		t.Fatalf("Request = %+v, %v", got, err)
	}
	_, err = bus.Request[echo](ctx, nc, "t.fail", echo{}, nil)
	var se *bus.ServiceError
	if !errors.As(err, &se) || se.Status() != 403 || se.Description != "nope" {
		t.Fatalf("want ServiceError 403, got %v", err)
	}
	_, err = bus.Request[echo](ctx, nc, "t.none", echo{}, nil)
	if !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("want ErrNoResponders, got %v", err)
	}
}

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	c := bus.HeaderCarrier(h)
	c.Set("traceparent", "00-abc")
	if h["traceparent"][0] != "00-abc" || c.Get("traceparent") != "00-abc" || c.Get("Traceparent") != "" || len(c.Keys()) != 1 {
		t.Fatalf("carrier canonicalised or lost: %v", h)
	}
}

func TestEnsureStreamsReconciles(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	s := bus.NewSubjects("")
	// A stream left with other settings is brought back to the declared ones.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "USAGE", Subjects: []string{s.UsageAll()}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, s, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "USAGE")
	if err != nil || st.CachedInfo().Config.MaxAge != bus.UsageMaxAge || st.CachedInfo().Config.Duplicates != bus.UsageDuplicateWindow {
		t.Fatalf("USAGE not reconciled: %v %+v", err, st.CachedInfo().Config)
	}
}
