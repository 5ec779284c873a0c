package chat_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// waitLimit bounds every wait in these tests; it is a failure deadline,
// never an assertion about speed.
const waitLimit = 10 * time.Second

// harness is a chat service on its own NATS server with stand-in authz,
// meter and cache.
type harness struct {
	t    testing.TB
	srv  *server.Server
	cfg  chat.Config // as given to chat.New
	nc   *nats.Conn
	js   jetstream.JetStream
	subj bus.Subjects
	c    *contracts
	svc  *chat.Service
	stop func() // stops the service and checks Run's result; idempotent
}

func newHarness(t testing.TB, cfg chat.Config, o contractOpts) *harness {
	t.Helper()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, nc: nc, js: js, subj: bus.NewSubjects(cfg.Prefix)}
	h.c = startContracts(t, nc, cfg.Prefix, o)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, h.subj, cfg.Streams); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = time.Second
	}
	h.cfg = cfg
	h.svc, h.stop = h.run(nc)
	h.waitPulling()
	return h
}

// run starts a chat service with the harness's config on nc; the returned
// stop ends it and checks Run's result (idempotent, also run at cleanup).
func (h *harness) run(nc *nats.Conn) (*chat.Service, func()) {
	t := h.t
	t.Helper()
	svc, err := chat.New(h.cfg, nc)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopRun()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return svc, stop
}

// startReplica starts another chat replica on its own connection to the
// harness's server and waits until it pulls.
func (h *harness) startReplica() {
	h.t.Helper()
	h.run(natstest.Connect(h.t, h.srv))
	h.waitPulling()
}

// waitPulling waits until the service has a pull request waiting on its
// consumer; it subscribed to cancellations before that.
func (h *harness) waitPulling() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		cons, err := h.js.Consumer(ctx, h.subj.StreamInbound(), bus.ConsumerChat)
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil && info.NumWaiting > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("chat never started pulling: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// user returns a test identity whose channel id is name.
func user(name string) identity.Identity {
	return identity.Identity{Sub: name, Issuer: "test", Tenant: "acme", ChannelID: name, Kind: identity.KindUser}
}

func idHeader(t testing.TB, id identity.Identity) string {
	t.Helper()
	v, err := identity.Encode(id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// publish stores a chat request in INBOUND as edge does.
func (h *harness) publish(id identity.Identity, reqID string, body []byte, extra nats.Header) {
	h.t.Helper()
	hdr := nats.Header{bus.HeaderIdentity: {idHeader(h.t, id)}, bus.HeaderRequestID: {reqID}, bus.HeaderMsgID: {reqID}}
	for k, v := range extra {
		if v == nil {
			delete(hdr, k)
			continue
		}
		hdr[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, &nats.Msg{Subject: h.subj.Inbound(id.ChannelID), Data: body, Header: hdr}); err != nil {
		h.t.Fatal(err)
	}
}

// listen subscribes to subject before anything is published to it.
func (h *harness) listen(subject string) *nats.Subscription {
	h.t.Helper()
	sub, err := h.nc.SubscribeSync(subject)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// next reads one event.
func next(t testing.TB, sub *nats.Subscription) bus.Event {
	t.Helper()
	m, err := sub.NextMsg(waitLimit)
	if err != nil {
		t.Fatalf("waiting for an event on %s: %v", sub.Subject, err)
	}
	var ev bus.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatalf("event %s: %v", m.Data, err)
	}
	return ev
}

// answer reads events until the final one (metadata or error).
func answer(t testing.TB, sub *nats.Subscription) []bus.Event {
	t.Helper()
	var evs []bus.Event
	for {
		ev := next(t, sub)
		evs = append(evs, ev)
		if ev.Metadata != nil || ev.Error != nil {
			return evs
		}
	}
}

// deltaText concatenates the deltas of an answer.
func deltaText(evs []bus.Event) (string, int) {
	var sb strings.Builder
	n := 0
	for _, ev := range evs {
		if ev.ContentBlockDelta != nil {
			sb.WriteString(ev.ContentBlockDelta.Delta.Text)
			n++
		}
	}
	return sb.String(), n
}

// usageRecord waits for the usage record of reqID in USAGE.
func (h *harness) usageRecord(tenant, reqID string) (bus.UsageRecord, nats.Header) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	stream, err := h.js.Stream(ctx, h.subj.StreamUsage())
	if err != nil {
		h.t.Fatal(err)
	}
	for {
		msgs, err := stream.GetLastMsgForSubject(ctx, h.subj.Usage(tenant))
		if err == nil {
			// Scan backwards from the last message for reqID.
			for seq := msgs.Sequence; seq > 0; seq-- {
				m, err := stream.GetMsg(ctx, seq)
				if err != nil {
					continue
				}
				var rec bus.UsageRecord
				if json.Unmarshal(m.Data, &rec) == nil && rec.RequestID == reqID {
					return rec, m.Header
				}
			}
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("no usage record for %s: %v", reqID, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// refused publishes body as who's request reqID and checks that the answer
// is a single validation_error whose message contains want.
func (h *harness) refused(t testing.TB, who identity.Identity, reqID string, body []byte, want string) {
	t.Helper()
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	h.publish(who, reqID, body, nil)
	if ev := next(t, sub); ev.Error == nil || ev.Error.Type != bus.ErrTypeValidation || !strings.Contains(ev.Error.Message, want) || ev.RequestID != reqID {
		t.Fatalf("%s: %+v, want validation_error naming %q", reqID, ev.Error, want)
	}
}

// eventually polls cond until it holds or the wait limit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// request encodes a one-message echo request.
func request(text string, mod ...func(*bus.ChatRequest)) []byte {
	req := bus.ChatRequest{
		ModelID:        "echo",
		ConversationID: "conv-1",
		Messages:       []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: text}}}},
	}
	for _, m := range mod {
		m(&req)
	}
	b, _ := json.Marshal(req)
	return b
}
