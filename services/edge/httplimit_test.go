package edge

import (
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

func TestHTTPRateLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	alice := identity.Identity{Sub: "alice", Issuer: "i", ChannelID: "alice"}
	bob := identity.Identity{Sub: "bob", Issuer: "i", ChannelID: "bob"}
	l := newHTTPRateLimiter(2, 5, 2) // 2 events/s, bursts of 5, 2 callers

	if ok, _ := l.allow(alice, 5, t0); !ok {
		t.Fatal("a full burst was refused")
	}
	ok, wait := l.allow(alice, 1, t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%s, want refused with 500ms", ok, wait)
	}
	if ok, _ := l.allow(bob, 5, t0); !ok {
		t.Fatal("bob is limited by alice's bucket")
	}
	if ok, _ := l.allow(alice, 1, t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("no refill after 500ms at 2/s")
	}
	// The table is full (alice, bob) and both are active: a third caller is
	// refused rather than evicting someone's state.
	carol := identity.Identity{Sub: "carol", Issuer: "i", ChannelID: "carol"}
	if ok, _ := l.allow(carol, 1, t0.Add(time.Second)); ok {
		t.Fatal("a third caller got a bucket while the table was full of active callers")
	}
	// Once alice and bob have refilled, their buckets are dropped and carol
	// gets one.
	later := t0.Add(10 * time.Second)
	if ok, _ := l.allow(carol, 5, later); !ok {
		t.Fatal("idle buckets were not evicted for a new caller")
	}
	if len(l.buckets) > 2 {
		t.Fatalf("limiter holds %d buckets, bound is 2", len(l.buckets))
	}
	// An API key is its own caller, apart from its owner.
	key := identity.Identity{Sub: "alice", Issuer: "i", ChannelID: "alice", KeyID: "k1"}
	if identityKey(key) == identityKey(alice) {
		t.Fatal("API key shares its owner's bucket")
	}
}

func TestPostEventRateLimited(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) {
		c.PublishRate = 0.001 // no refill during the test
		c.PublishBurst = 6
	})
	body := `{"channel":"/Inbound-Messages/alice","events":["{\"a\":1}","{\"b\":2}","{\"c\":3}"]}`
	auth := map[string]string{"Authorization": "alice"}
	for i := range 2 {
		if resp, out := e.post(body, auth); resp.StatusCode != 200 {
			t.Fatalf("publish %d within the burst: %d %v", i, resp.StatusCode, out)
		}
	}
	resp, out := e.post(body, auth)
	if resp.StatusCode != 429 || resp.Header.Get(headerErrorType) != "LimitExceededException" {
		t.Fatalf("over the burst: %d %s %v", resp.StatusCode, resp.Header.Get(headerErrorType), out)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Another caller is not affected.
	if resp, out := e.post(`{"channel":"/Inbound-Messages/bob","events":["{}"]}`, map[string]string{"Authorization": "bob"}); resp.StatusCode != 200 {
		t.Fatalf("bob limited by alice: %d %v", resp.StatusCode, out)
	}
}
