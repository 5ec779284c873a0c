package edge

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

func TestIdentCacheExpiry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	c := newIdentCache(8)
	long := keyOf(credential{Token: "long"})
	short := keyOf(credential{Token: "short"})
	expired := keyOf(credential{APIKey: "expired"})

	// An identity without an expiry (API key) lives IdentityCacheTTL.
	c.put(long, identity.Identity{Sub: "a"}, c.generation(), now)
	// A token expiring sooner than the TTL lives until its expiry.
	c.put(short, identity.Identity{Sub: "b", ExpiresAt: now.Add(time.Second)}, c.generation(), now)
	// An already expired identity is not stored.
	c.put(expired, identity.Identity{Sub: "c", ExpiresAt: now}, c.generation(), now)

	if _, ok := c.get(expired, now); ok {
		t.Fatal("an expired identity was cached")
	}
	if id, ok := c.get(short, now.Add(time.Second-time.Nanosecond)); !ok || id.Sub != "b" {
		t.Fatalf("short before its expiry: %v %v", id, ok)
	}
	if _, ok := c.get(short, now.Add(time.Second)); ok {
		t.Fatal("short served at its token's expiry")
	}
	if _, ok := c.get(long, now.Add(IdentityCacheTTL-time.Nanosecond)); !ok {
		t.Fatal("long missing before the TTL")
	}
	if _, ok := c.get(long, now.Add(IdentityCacheTTL)); ok {
		t.Fatal("long served after the TTL")
	}
	if c.len() != 0 {
		t.Fatalf("expired entries kept: %d", c.len())
	}
	// Decisions end with their identity.
	c.put(short, identity.Identity{Sub: "b", ExpiresAt: now.Add(time.Second)}, c.generation(), now)
	c.putDecision(short, "k", nil, c.generation())
	if _, ok := c.decision(short, "k", now); !ok {
		t.Fatal("decision missing")
	}
	if _, ok := c.decision(short, "k", now.Add(time.Second)); ok {
		t.Fatal("decision served after its identity expired")
	}
}

func TestIdentCacheClear(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	c := newIdentCache(8)
	k := keyOf(credential{Token: "t"})
	c.put(k, identity.Identity{Sub: "a"}, c.generation(), now)
	c.putDecision(k, "publish", nil, c.generation())

	// A verify that started before a revocation and ends after it must
	// not store its (possibly revoked) identity or decision.
	stale := c.generation()
	c.clear()
	if _, ok := c.get(k, now); ok {
		t.Fatal("identity survived clear")
	}
	if _, ok := c.decision(k, "publish", now); ok {
		t.Fatal("decision survived clear")
	}
	c.put(k, identity.Identity{Sub: "a"}, stale, now)
	if _, ok := c.get(k, now); ok {
		t.Fatal("an identity fetched before the revocation was stored after it")
	}
	c.put(k, identity.Identity{Sub: "a"}, c.generation(), now)
	c.putDecision(k, "publish", nil, stale)
	if _, ok := c.decision(k, "publish", now); ok {
		t.Fatal("a decision made before the revocation was stored after it")
	}
	// Decisions of an identity that is not cached are dropped.
	other := keyOf(credential{Token: "other"})
	c.putDecision(other, "publish", nil, c.generation())
	if _, ok := c.decision(other, "publish", now); ok {
		t.Fatal("decision stored without its identity")
	}
}

func TestIdentCacheBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	const max = 16
	c := newIdentCache(max)
	for i := range 10 * max {
		c.put(keyOf(credential{Token: fmt.Sprint(i)}), identity.Identity{Sub: fmt.Sprint(i)}, c.generation(), now.Add(time.Duration(i)))
		if n := c.len(); n > max {
			t.Fatalf("after %d puts the cache holds %d entries, max %d", i+1, n, max)
		}
	}
	// The newest entry is always kept.
	last := keyOf(credential{Token: fmt.Sprint(10*max - 1)})
	if _, ok := c.get(last, now); !ok {
		t.Fatal("the newest entry was evicted")
	}
	// Token and API key of the same text are different credentials.
	if keyOf(credential{Token: "x"}) == keyOf(credential{APIKey: "x"}) {
		t.Fatal("token and API key share a key")
	}
	// Decisions per identity are bounded too.
	k := keyOf(credential{Token: "d"})
	c.put(k, identity.Identity{Sub: "d"}, c.generation(), now)
	for i := range 10 * maxEntryDecisions {
		c.putDecision(k, fmt.Sprint(i), protocol.Unauthorized("no"), c.generation())
	}
	c.mu.Lock()
	n := len(c.entries[k].decisions)
	c.mu.Unlock()
	if n > maxEntryDecisions {
		t.Fatalf("%d decisions cached, max %d", n, maxEntryDecisions)
	}
}

// TestHTTPIdentityCache: HTTP callers are verified and checked once, and a
// revocation makes the next request ask authz again.
func TestHTTPIdentityCache(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	verifies, err := e.nc.SubscribeSync(bus.NewSubjects("").AuthzVerify())
	if err != nil {
		t.Fatal(err)
	}
	checks, err := e.nc.SubscribeSync(bus.NewSubjects("").AuthzCheck())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	count := func(s interface{ Pending() (int, int, error) }) int {
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		n, _, err := s.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	post := func(who, ch string, want int) {
		t.Helper()
		resp, body := e.post(`{"channel":"`+ch+`","events":["{}"]}`, map[string]string{"Authorization": who})
		if resp.StatusCode != want {
			t.Fatalf("%s to %s: %d %v, want %d", who, ch, resp.StatusCode, body, want)
		}
	}
	post("alice", "/Inbound-Messages/alice", 200)
	v1, c1 := count(verifies), count(checks)
	post("alice", "/Inbound-Messages/alice", 200)
	post("alice", "/Inbound-Messages/bob", 401) // a cached identity, a new (denied) decision
	post("alice", "/Inbound-Messages/bob", 401) // the denial is cached too
	if v, c := count(verifies), count(checks); v != v1 || c != c1+1 {
		t.Fatalf("cached caller: verifies %d->%d checks %d->%d, want no verify and one check", v1, v, c1, c)
	}
	// Bad credentials are never cached.
	post("mallory", "/Inbound-Messages/mallory", 401)
	post("mallory", "/Inbound-Messages/mallory", 401)
	if v := count(verifies); v != v1+2 {
		t.Fatalf("bad credential: verifies %d->%d, want two more", v1, v)
	}

	// The OpenAI-compatible API shares the cache: alice is not verified
	// again (no chat answers here, so the catalog itself fails).
	req, err := http.NewRequest(http.MethodGet, e.svc.URL()+PathModels, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		t.Fatalf("GET %s: %d", PathModels, resp.StatusCode)
	}
	if v := count(verifies); v != v1+2 {
		t.Fatalf("OpenAI API with a cached caller: verifies %d->%d, want none", v1+2, v)
	}

	e.publishRevocation(bus.Revocation{Sub: "someone", RevokedAt: time.Now()})
	if n := e.svc.idents.len(); n != 0 {
		t.Fatalf("%d identities cached after a revocation", n)
	}
	v2, c2 := count(verifies), count(checks)
	post("alice", "/Inbound-Messages/alice", 200)
	if v, c := count(verifies), count(checks); v != v2+1 || c != c2+1 {
		t.Fatalf("after a revocation: verifies %d->%d checks %d->%d, want one more each", v2, v, c2, c)
	}
}

// BenchmarkIdentCacheHit is what a cached HTTP caller costs instead of an
// authz verify and check round trip: hashing the credential and two
// lookups.
func BenchmarkIdentCacheHit(b *testing.B) {
	b.ReportAllocs()
	c := newIdentCache(MaxIdentityCache)
	now := time.Now()
	cred := credential{Token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"}
	c.put(keyOf(cred), identity.Identity{Sub: "alice", ChannelID: "alice"}, c.generation(), now)
	c.putDecision(keyOf(cred), "publish\x00/Inbound-Messages/alice", nil, c.generation())
	for b.Loop() {
		k := keyOf(cred)
		if _, ok := c.get(k, now); !ok {
			b.Fatal("miss")
		}
		if _, ok := c.decision(k, "publish\x00/Inbound-Messages/alice", now); !ok {
			b.Fatal("miss")
		}
	}
}
