package chat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// quietWindow is how long a test watches for something that must not
// happen (an upstream call, an event) while meter holds a reservation.
const quietWindow = 100 * time.Millisecond

// upstreamCalls waits until fake has received n requests.
func upstreamCalls(t *testing.T, fake *providertest.OpenAI, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !fake.WaitFor(ctx, func(requests, _ int) bool { return requests == n }) {
		t.Fatalf("the upstream never received request %d (has %d)", n, len(fake.Requests()))
	}
}

// noUpstreamCallWhileHeld checks that, with meter holding a reservation,
// the upstream receives nothing beyond its first had requests.
func noUpstreamCallWhileHeld(t *testing.T, fake *providertest.OpenAI, had int) {
	t.Helper()
	time.Sleep(quietWindow)
	if n := len(fake.Requests()); n != had {
		t.Fatalf("the model was called (%d requests, want %d) before its reservation was granted", n, had)
	}
}

func TestReservationOverlapsModelCall(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"Hi", " there"}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 2}})
	defer fake.Close()
	cfg := openAIConfig(fake)
	cfg.EarlyModelCall = true
	h := newHarness(t, cfg, contractOpts{})
	ann := user("ann")
	sub := h.listen(h.subj.Outbound(ann.ChannelID))

	// The first request of a caller waits for meter: nothing is known of
	// their quota yet.
	release := h.c.holdReserves(t)
	h.publish(ann, "req-1", modelRequest("gpt", "one"), nil)
	eventually(t, "the first reservation", func() bool { return h.c.reserveCount() == 1 })
	noUpstreamCallWhileHeld(t, fake, 0)
	release()
	checkAnswer(t, answer(t, sub), "req-1", "conv-1", "Hi there", "end_turn")

	// meter's answers showed ample headroom (100,000 tokens; the request
	// reserves about 100): the next request calls the model while meter
	// still holds its reservation, and relays nothing until the grant.
	release = h.c.holdReserves(t)
	h.publish(ann, "req-2", modelRequest("gpt", "two"), nil)
	upstreamCalls(t, fake, 2)
	eventually(t, "the second reservation", func() bool { return h.c.reserveCount() == 2 })
	if m, err := sub.NextMsg(quietWindow); err == nil {
		t.Fatalf("event relayed before the reservation was granted: %s", m.Data)
	}
	release()
	md := checkAnswer(t, answer(t, sub), "req-2", "conv-1", "Hi there", "end_turn")
	if u := md.Metadata.Usage; u.InputTokens != 5 || u.OutputTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
	if md.TokenUsage == nil || len(md.TokenUsage.Windows) != 1 || md.TokenUsage.Windows[0].Used != 14 {
		t.Fatalf("quota state %+v, want both requests' 7 tokens settled", md.TokenUsage)
	}
}

func TestRefusalAfterEarlyModelCall(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"Hi", " you"}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 2}})
	defer fake.Close()
	cfg := openAIConfig(fake)
	cfg.EarlyModelCall = true
	h := newHarness(t, cfg, contractOpts{})
	bo := user("bo")
	sub := h.listen(h.subj.Outbound(bo.ChannelID))
	h.publish(bo, "req-1", modelRequest("gpt", "one"), nil)
	checkAnswer(t, answer(t, sub), "req-1", "conv-1", "Hi you", "end_turn")

	// Another replica spends the headroom meanwhile: meter refuses the
	// request whose model call already started.
	fake.Push(providertest.Reply{Chunks: []string{"never", " shown"}, Hang: true})
	release := h.c.holdReserves(t)
	h.publish(bo, "req-2", modelRequest("gpt", "two"), nil)
	upstreamCalls(t, fake, 2)
	h.c.refuse(&bus.QuotaRefusal{
		QuotaWindow:       bus.QuotaWindow{Scope: "user", Window: "rolling24h", Metric: "totalTokens", Used: 100000, Limit: 100000},
		RetryAfterSeconds: 60,
	})
	release()
	ev := next(t, sub)
	if ev.Error == nil || ev.Error.Type != bus.ErrTypeQuotaExceeded || ev.Seq != 0 || ev.RequestID != "req-2" {
		t.Fatalf("event %+v, want quota_exceeded as the whole answer", ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !fake.WaitFor(ctx, func(_, cancelled int) bool { return cancelled == 1 }) {
		t.Fatal("the upstream call was not cancelled after the refusal")
	}
	// What the upstream was sent is in the ledger, not in the quota.
	rec, _ := h.usageRecord("acme", "req-2")
	if rec.Status != bus.UsageStatusCancelled || rec.InputTokens == 0 || rec.CostMicroUSD == 0 {
		t.Fatalf("usage record %+v", rec)
	}
	if _, settles, _ := h.c.snapshot(); len(settles) != 1 || settles[0].RequestID != "req-1" {
		t.Fatalf("settles %+v, want req-1's only", settles)
	}
	if m, err := sub.NextMsg(quietWindow); err == nil {
		t.Fatalf("event after the refusal: %s", m.Data)
	}

	// The refusal made the replica forget bo's headroom: the next request
	// waits for meter, which refuses it before any model call.
	release = h.c.holdReserves(t)
	h.publish(bo, "req-3", modelRequest("gpt", "three"), nil)
	eventually(t, "the third reservation", func() bool { return h.c.reserveCount() == 3 })
	noUpstreamCallWhileHeld(t, fake, 2)
	release()
	if ev := next(t, sub); ev.Error == nil || ev.Error.Type != bus.ErrTypeQuotaExceeded || ev.RequestID != "req-3" {
		t.Fatalf("event %+v", ev)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("a refused request called the model (%d upstream requests)", n)
	}
}

// TestModelCalledAfterGrantByDefault: without EarlyModelCall the model
// waits for every grant, however much headroom meter reported.
func TestModelCalledAfterGrantByDefault(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"Hi", " you"}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 2}})
	defer fake.Close()
	h := newHarness(t, openAIConfig(fake), contractOpts{})
	cy := user("cy")
	sub := h.listen(h.subj.Outbound(cy.ChannelID))
	for i, id := range []string{"req-1", "req-2"} {
		release := h.c.holdReserves(t)
		h.publish(cy, id, modelRequest("gpt", id), nil)
		eventually(t, "the reservation", func() bool { return h.c.reserveCount() == i+1 })
		noUpstreamCallWhileHeld(t, fake, i)
		release()
		checkAnswer(t, answer(t, sub), id, "conv-1", "Hi you", "end_turn")
	}
}

// TestCachedAnswerWaitsForGrant: a cache hit is replayed while its
// reservation is asked for, but nothing of it reaches the client before
// the grant, and a refusal is the whole answer.
func TestCachedAnswerWaitsForGrant(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	hal := user("hal")
	body := request("what is cached")
	var req bus.ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	h.c.mu.Lock()
	h.c.entries[bus.CacheKey("user:"+hal.Subject(), "echo", req)] = bus.CacheEntry{ModelID: "echo", Text: "it is here", Usage: bus.Usage{InputTokens: 3, OutputTokens: 3, TotalTokens: 6}}
	h.c.mu.Unlock()
	sub := h.listen(h.subj.Outbound(hal.ChannelID))

	release := h.c.holdReserves(t)
	h.publish(hal, "req-hit", body, nil)
	eventually(t, "the reservation", func() bool { return h.c.reserveCount() == 1 })
	if m, err := sub.NextMsg(quietWindow); err == nil {
		t.Fatalf("cached answer relayed before the grant: %s", m.Data)
	}
	release()
	checkAnswer(t, answer(t, sub), "req-hit", "conv-1", "it is here", "end_turn")

	release = h.c.holdReserves(t)
	h.publish(hal, "req-hit-2", body, nil)
	eventually(t, "the second reservation", func() bool { return h.c.reserveCount() == 2 })
	h.c.refuse(&bus.QuotaRefusal{QuotaWindow: bus.QuotaWindow{Scope: "user", Window: "minute", Metric: "requests", Used: 1, Limit: 1}, RetryAfterSeconds: 30})
	release()
	if ev := next(t, sub); ev.Error == nil || ev.Error.Type != bus.ErrTypeQuotaExceeded || ev.Seq != 0 || ev.RequestID != "req-hit-2" {
		t.Fatalf("event %+v, want quota_exceeded as the whole answer", ev)
	}
	if m, err := sub.NextMsg(quietWindow); err == nil {
		t.Fatalf("event after the refusal: %s", m.Data)
	}
	if _, settles, _ := h.c.snapshot(); len(settles) != 1 {
		t.Fatalf("settles %+v, want the first hit's only", settles)
	}
}
