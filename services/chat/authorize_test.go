package chat_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats.go"
)

// apiKeyUser returns an API key identity of user name.
func apiKeyUser(name, keyID string) identity.Identity {
	id := user(name)
	id.Kind, id.KeyID = identity.KindAPIKey, keyID
	return id
}

// usageCount returns how many usage records the USAGE stream holds.
func (h *harness) usageCount() uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	stream, err := h.js.Stream(ctx, h.subj.StreamUsage())
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// revoke broadcasts r as authz does.
func (h *harness) revoke(r bus.Revocation) {
	h.t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Publish(h.subj.AuthzRevoked(), data); err != nil {
		h.t.Fatal(err)
	}
}

// onlyError reads one event, checks it is an error of typ and that nothing
// follows it, and returns it.
func onlyError(t *testing.T, sub *nats.Subscription, typ string) *bus.ErrorEvent {
	t.Helper()
	ev := next(t, sub)
	if ev.Error == nil || ev.Error.Type != typ || ev.Seq != 0 {
		t.Fatalf("want one %s error event, got %+v", typ, ev)
	}
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("unexpected event after the error: %s", m.Data)
	}
	return ev.Error
}

func TestModelAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	bob := apiKeyUser("bob", "k1")
	bob.Plan, bob.Groups = "pro", []string{"beta"}
	sub := h.listen(h.subj.Outbound(bob.ChannelID))
	// An alias is checked under the model's canonical id.
	h.publish(bob, "req-a1", request("may I", func(r *bus.ChatRequest) { r.ModelID = "gatehouse-echo" }), nil)
	checkAnswer(t, answer(t, sub), "req-a1", "conv-1", "may I", "end_turn")

	checks := h.c.checked()
	if len(checks) != 1 {
		t.Fatalf("checks %+v", checks)
	}
	c := checks[0]
	if c.Op != bus.OpInvoke || c.Model != "echo" || c.Identity.Sub != "bob" || c.Identity.KeyID != "k1" ||
		c.Identity.Plan != "pro" || len(c.Identity.Groups) != 1 || c.Identity.Groups[0] != "beta" {
		t.Fatalf("check %+v", c)
	}
}

func TestModelForbidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	h.c.deny("echo", "model echo is outside the API key's scope")
	dana := apiKeyUser("dana", "k2")
	sub := h.listen(h.subj.Outbound(dana.ChannelID))
	h.publish(dana, "req-f1", request("let me in"), nil)

	e := onlyError(t, sub, bus.ErrTypeForbidden)
	if !strings.Contains(e.Message, "model echo") || !strings.Contains(e.Message, "outside the API key's scope") ||
		e.RequestID != "req-f1" || e.Details["model"] != "echo" {
		t.Fatalf("error %+v", e)
	}
	// No reservation, no cache lookup, no usage record.
	reserves, _, _ := h.c.snapshot()
	if len(reserves) != 0 || h.c.cacheGets() != 0 || h.usageCount() != 0 {
		t.Fatalf("reserves %+v cache gets %d usage records %d", reserves, h.c.cacheGets(), h.usageCount())
	}
	// Denials are not cached: once allowed, the next request is served.
	h.c.deny("echo", "")
	h.publish(dana, "req-f2", request("let me in"), nil)
	checkAnswer(t, answer(t, sub), "req-f2", "conv-1", "let me in", "end_turn")
	if n := len(h.c.checked()); n != 2 {
		t.Fatalf("%d checks, want 2", n)
	}
}

func TestAuthzUnavailable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mute bool // a responder that never answers, instead of none
	}{
		{"no responders", false},
		{"no answer", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, chat.Config{AuthzTimeout: 100 * time.Millisecond}, contractOpts{noAuthz: true})
			if tc.mute {
				mute, err := h.nc.Subscribe(h.subj.AuthzCheck(), func(*nats.Msg) {})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = mute.Unsubscribe() })
			}
			erin := user("erin")
			sub := h.listen(h.subj.Outbound(erin.ChannelID))
			h.publish(erin, "req-u1", request("anyone there"), nil)
			e := onlyError(t, sub, bus.ErrTypeInternal)
			if e.Message != "authorization is unavailable; try again" {
				t.Fatalf("error %+v", e)
			}
			reserves, _, _ := h.c.snapshot()
			if len(reserves) != 0 || h.c.cacheGets() != 0 {
				t.Fatalf("served unchecked: reserves %+v cache gets %d", reserves, h.c.cacheGets())
			}
		})
	}
}

func TestModelDecisionCached(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{DisableCache: true}, contractOpts{noCache: true})
	frank := user("frank")
	sub := h.listen(h.subj.Outbound(frank.ChannelID))
	h.publish(frank, "req-c1", request("first one"), nil)
	checkAnswer(t, answer(t, sub), "req-c1", "conv-1", "first one", "end_turn")
	// The allow is reused: authz's later change of mind is not asked.
	h.c.deny("echo", "no longer")
	h.publish(frank, "req-c2", request("second one"), nil)
	checkAnswer(t, answer(t, sub), "req-c2", "conv-1", "second one", "end_turn")
	if n := len(h.c.checked()); n != 1 {
		t.Fatalf("%d checks, want 1 (the second decision comes from the cache)", n)
	}
	// Anything the decision depends on makes a new key.
	other := frank
	other.Plan = "pro"
	h.publish(other, "req-c3", request("third"), nil)
	onlyError(t, sub, bus.ErrTypeForbidden)
	if n := len(h.c.checked()); n != 2 {
		t.Fatalf("%d checks, want 2", n)
	}
}

func TestRevocationDropsDecision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{DisableCache: true}, contractOpts{noCache: true})
	gina := apiKeyUser("gina", "k-gina")
	hank := user("hank")
	gsub := h.listen(h.subj.Outbound(gina.ChannelID))
	hsub := h.listen(h.subj.Outbound(hank.ChannelID))
	h.publish(gina, "req-r1", request("one more"), nil)
	checkAnswer(t, answer(t, gsub), "req-r1", "conv-1", "one more", "end_turn")
	h.publish(hank, "req-r2", request("two more"), nil)
	checkAnswer(t, answer(t, hsub), "req-r2", "conv-1", "two more", "end_turn")
	if n := chat.CachedDecisions(h.svc); n != 2 {
		t.Fatalf("%d cached decisions, want 2", n)
	}

	// Revocations are applied in order: one for someone else drops
	// nothing, the key's drops only the key's decision.
	h.revoke(bus.Revocation{Sub: "ivan", RevokedAt: time.Now()})
	h.revoke(bus.Revocation{Sub: "hank", Issuer: "elsewhere", RevokedAt: time.Now()})
	h.revoke(bus.Revocation{KeyID: "k-gina", Reason: "leaked", RevokedAt: time.Now()})
	eventually(t, "the key's decision dropped", func() bool { return chat.CachedDecisions(h.svc) == 1 })

	// The next request of the key asks authz again, which now refuses.
	h.c.deny("echo", "API key k-gina was revoked")
	h.publish(gina, "req-r3", request("three"), nil)
	if e := onlyError(t, gsub, bus.ErrTypeForbidden); !strings.Contains(e.Message, "k-gina was revoked") {
		t.Fatalf("error %+v", e)
	}
	if n := len(h.c.checked()); n != 3 {
		t.Fatalf("%d checks, want 3", n)
	}

	// A user revocation (with the issuer) drops the user's decisions.
	h.revoke(bus.Revocation{Sub: "hank", Issuer: "test", RevokedAt: time.Now()})
	eventually(t, "the user's decision dropped", func() bool { return chat.CachedDecisions(h.svc) == 0 })
}
