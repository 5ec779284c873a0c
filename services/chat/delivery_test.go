package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// consumerInfo reads the chat consumer's state.
func (h *harness) consumerInfo() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cons, err := h.js.Consumer(ctx, h.subj.StreamInbound(), bus.ConsumerChat)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// inboundMsgs is how many requests INBOUND holds (not counting its keep
// markers).
func (h *harness) inboundMsgs() uint64 {
	h.t.Helper()
	return h.inboundCount(h.subj.InboundAll())
}

// inboundCount is how many messages INBOUND holds on subjects matching
// filter.
func (h *harness) inboundCount(filter string) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := h.js.Stream(ctx, h.subj.StreamInbound())
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		h.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// reserveCount is how many reservations the stand-in meter received.
func (h *harness) reserveCount() int {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return len(h.c.reserves)
}

// A worker that takes a request and dies before acknowledging it: the
// request is never run again (MaxDeliver 1) and a surviving replica answers
// it with one internal_error event once AckWait has passed, removing it
// from INBOUND.
func TestUnacknowledgedRequestIsAnsweredNotRerun(t *testing.T) {
	ackWait := time.Second
	h := newHarness(t, chat.Config{AckWait: ackWait}, contractOpts{})
	h.stop() // the consumer stays; no replica pulls now
	if got := h.consumerInfo().Config.MaxDeliver; got != 1 {
		t.Fatalf("consumer MaxDeliver = %d; want 1", got)
	}
	alice := user("alice")
	out := h.listen(h.subj.Outbound(alice.ChannelID))
	h.publish(alice, "req-dies", request("never answered"), nil)

	// The worker that dies: it pulls the request on its own connection and
	// closes it without acknowledging.
	dead := natstest.Connect(t, h.srv)
	djs, err := jetstream.New(dead)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cons, err := djs.Consumer(ctx, h.subj.StreamInbound(), bus.ConsumerChat)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
	if err != nil {
		t.Fatalf("dying worker's pull: %v", err)
	}
	if got := m.Headers().Get(bus.HeaderRequestID); got != "req-dies" {
		t.Fatalf("dying worker pulled %q", got)
	}
	dead.Close()

	h.startReplica()
	ev := next(t, out)
	if ev.Error == nil || ev.Error.Type != bus.ErrTypeInternal || ev.RequestID != "req-dies" || ev.ConversationID != "conv-1" {
		t.Fatalf("first event = %+v; want an internal_error for req-dies in conv-1", ev)
	}
	eventually(t, "the request to leave INBOUND", func() bool { return h.inboundMsgs() == 0 })
	info := h.consumerInfo()
	if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.NumPending != 0 {
		t.Fatalf("consumer ackPending %d redelivered %d pending %d; want 0 0 0", info.NumAckPending, info.NumRedelivered, info.NumPending)
	}
	// Had JetStream redelivered it, the replica would have run it by now
	// (redelivery and the advisory both follow AckWait); give it another
	// AckWait anyway.
	if m, err := out.NextMsg(2 * ackWait); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("a second event arrived: %s (err %v)", m.Data, err)
	}
	if n := h.reserveCount(); n != 0 {
		t.Fatalf("meter got %d reservations; the request ran", n)
	}
}

// A request that reaches its worker more than half of AckWait after it was
// stored is claimed (deleted from INBOUND) and answered normally.
func TestLateRequestIsClaimedAndRun(t *testing.T) {
	ackWait := time.Second
	h := newHarness(t, chat.Config{AckWait: ackWait}, contractOpts{})
	h.stop()
	alice := user("alice")
	out := h.listen(h.subj.Outbound(alice.ChannelID))
	h.publish(alice, "req-late", request("late but fine"), nil)
	time.Sleep(ackWait/2 + 100*time.Millisecond) // setup: make it late; nothing is timed
	h.startReplica()
	evs := answer(t, out)
	if text, _ := deltaText(evs); text != "late but fine" || evs[len(evs)-1].Metadata == nil {
		t.Fatalf("answer %q, last event %+v", text, evs[len(evs)-1])
	}
	eventually(t, "the request to leave INBOUND", func() bool { return h.inboundMsgs() == 0 })
	eventually(t, "no acknowledgement pending", func() bool { return h.consumerInfo().NumAckPending == 0 })
	if m, err := out.NextMsg(2 * ackWait); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("an event after the answer: %s (err %v)", m.Data, err)
	}
}

// Deployments whose consumer still has the old MaxDeliver get it updated in
// place when a replica starts.
func TestConsumerMaxDeliverUpdatedInPlace(t *testing.T) {
	h := newHarness(t, chat.Config{AckWait: time.Second}, contractOpts{})
	h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cfg := h.consumerInfo().Config
	cfg.MaxDeliver = 3
	if _, err := h.js.CreateOrUpdateConsumer(ctx, h.subj.StreamInbound(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := h.consumerInfo().Config.MaxDeliver; got != 3 {
		t.Fatalf("setup: MaxDeliver = %d", got)
	}
	h.startReplica()
	if got := h.consumerInfo().Config.MaxDeliver; got != 1 {
		t.Fatalf("MaxDeliver after start = %d; want 1", got)
	}
	alice := user("alice")
	out := h.listen(h.subj.Outbound(alice.ChannelID))
	h.publish(alice, "req-after-update", request("still works"), nil)
	if text, _ := deltaText(answer(t, out)); text != "still works" {
		t.Fatalf("answer %q", text)
	}
}

// A request already delivered to a replica's pull buffer when the replica
// shuts down is never redelivered (MaxDeliver 1), so the replica runs it
// within its drain grace period instead of dropping it.
func TestShutdownRunsBufferedRequests(t *testing.T) {
	// With Concurrency 3 the pull iterator asks for more requests when the
	// third running one is taken from it, so a fourth request published
	// while three run is delivered into its buffer.
	h := newHarness(t, chat.Config{Concurrency: 3, EchoDelay: 5 * time.Millisecond, DrainTimeout: waitLimit}, contractOpts{})
	kim := user("kim")
	sub := h.listen(h.subj.Outbound(kim.ChannelID))
	words := strings.TrimSpace(strings.Repeat("word ", 400))
	for _, id := range []string{"req-running-1", "req-running-2", "req-running-3"} {
		h.publish(kim, id, request(words), nil)
		for ev := next(t, sub); ev.MessageStart == nil || ev.RequestID != id; ev = next(t, sub) {
		}
	}
	h.publish(kim, "req-buffered", request("buffered words"), nil)
	// Delivered to the replica (not pending in the stream), not acknowledged:
	// it sits in the pull buffer.
	eventually(t, "the fourth request in the pull buffer", func() bool {
		info := h.consumerInfo()
		return info.NumPending == 0 && info.NumAckPending == 1
	})
	h.stop()
	got := map[string]string{}
	for {
		ev := next(t, sub)
		if ev.Error != nil {
			t.Fatalf("error event %+v", ev.Error)
		}
		if ev.ContentBlockDelta != nil {
			got[ev.RequestID] += ev.ContentBlockDelta.Delta.Text
		}
		if ev.Metadata != nil && ev.RequestID == "req-buffered" {
			break
		}
	}
	if got["req-buffered"] != "buffered words" {
		t.Fatalf("buffered request answered %q", got["req-buffered"])
	}
	if n := h.inboundMsgs(); n != 0 {
		t.Fatalf("INBOUND holds %d requests after shutdown", n)
	}
}

// A request is acknowledged once its stream has started, not when the
// stream ends: an answer that streams longer than AckWait would otherwise
// be given up by JetStream and answered a second time as undelivered.
// The upstream sends one chunk and then keeps the stream open, or sends
// nothing at all.
func TestAcknowledgedWhileItsStreamRuns(t *testing.T) {
	t.Run("after the first delta", func(t *testing.T) {
		t.Parallel()
		testAcknowledgedWhileRunning(t, providertest.Reply{Chunks: []string{"still going"}, Hang: true}, 2)
	})
	t.Run("upstream silent", func(t *testing.T) {
		t.Parallel()
		testAcknowledgedWhileRunning(t, providertest.Reply{Hang: true}, 1)
	})
}

// testAcknowledgedWhileRunning reads events events (messageStart, then
// deltas), then requires the running request to be acknowledged and gone
// from INBOUND, and cancels it.
func testAcknowledgedWhileRunning(t *testing.T, reply providertest.Reply, events int) {
	fake := providertest.NewOpenAI(reply)
	defer fake.Close()
	cfg := openAIConfig(fake)
	h := newHarness(t, cfg, contractOpts{})
	lee := user("lee")
	sub := h.listen(h.subj.Outbound(lee.ChannelID))
	h.publish(lee, "req-long", modelRequest("gpt", "talk for a long time"), nil)
	for range events { // messageStart (and the first delta): the model was called
		next(t, sub)
	}
	// Poll without failing: the stream must be cancelled before the test
	// ends either way, or the fake's Close would wait for it forever.
	acked := false
	for deadline := time.Now().Add(waitLimit); !acked && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		info := h.consumerInfo()
		acked = info.NumAckPending == 0 && info.AckFloor.Consumer == 1 && h.inboundMsgs() == 0
	}
	if err := h.nc.PublishMsg(&nats.Msg{Subject: h.subj.Cancel("req-long"), Header: nats.Header{bus.HeaderIdentity: {idHeader(t, lee)}}}); err != nil {
		t.Fatal(err)
	}
	answer(t, sub)
	if !acked {
		t.Fatal("the request was not acknowledged (and removed from INBOUND) while its stream ran")
	}
}
