package chat

import (
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

func TestDecisionsTTLAndBound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := newDecisions(2)
	d.put("a", decision{sub: "a", expires: now.Add(DecisionCacheTTL)}, d.generation(), now)
	if !d.get("a", now) || !d.get("a", now.Add(DecisionCacheTTL-time.Nanosecond)) {
		t.Fatal("fresh decision missing")
	}
	if d.get("a", now.Add(DecisionCacheTTL)) || d.len() != 0 {
		t.Fatalf("expired decision kept (%d entries)", d.len())
	}
	// Never more than the bound; expired entries go first.
	d.put("old", decision{expires: now.Add(time.Second)}, d.generation(), now)
	d.put("b", decision{expires: now.Add(DecisionCacheTTL)}, d.generation(), now)
	later := now.Add(2 * time.Second)
	d.put("c", decision{expires: later.Add(DecisionCacheTTL)}, d.generation(), later)
	if d.len() != 2 || !d.get("b", later) || !d.get("c", later) {
		t.Fatalf("%d entries; b %v c %v", d.len(), d.get("b", later), d.get("c", later))
	}
	d.put("e", decision{expires: later.Add(DecisionCacheTTL)}, d.generation(), later)
	if d.len() != 2 || !d.get("e", later) {
		t.Fatalf("%d entries after a put into a full cache", d.len())
	}
}

func TestDecisionsRevocationRace(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := newDecisions(8)
	gen := d.generation()  // a check starts
	d.revoke("k1", "", "") // the revocation arrives while it is in flight
	d.put("x", decision{keyID: "k1", expires: now.Add(DecisionCacheTTL)}, gen, now)
	if d.get("x", now) {
		t.Fatal("a decision from before a revocation was stored")
	}
	d.put("x", decision{keyID: "k1", expires: now.Add(DecisionCacheTTL)}, d.generation(), now)
	d.clear()
	if d.len() != 0 {
		t.Fatal("clear kept entries")
	}
}

func TestDecisionKey(t *testing.T) {
	t.Parallel()
	base := identity.Identity{Sub: "a", Issuer: "i", Tenant: "t", Plan: "p", Groups: []string{"g1", "g2"}, Kind: identity.KindAPIKey, KeyID: "k"}
	seen := map[string]string{decisionKey(base, "m"): "base"}
	variants := map[string]func(*identity.Identity, *string){
		"sub":    func(id *identity.Identity, _ *string) { id.Sub = "b" },
		"issuer": func(id *identity.Identity, _ *string) { id.Issuer = "j" },
		"tenant": func(id *identity.Identity, _ *string) { id.Tenant = "u" },
		"plan":   func(id *identity.Identity, _ *string) { id.Plan = "q" },
		"groups": func(id *identity.Identity, _ *string) { id.Groups = []string{"g1"} },
		"joined": func(id *identity.Identity, _ *string) { id.Groups = []string{"g1g2"} },
		"key":    func(id *identity.Identity, _ *string) { id.KeyID = "l" },
		"kind":   func(id *identity.Identity, _ *string) { id.Kind = identity.KindUser },
		"model":  func(_ *identity.Identity, m *string) { *m = "n" },
		"shift":  func(id *identity.Identity, _ *string) { id.Sub, id.KeyID = "", "ak" },
	}
	for name, mod := range variants {
		id, m := base, "m"
		id.Groups = append([]string(nil), base.Groups...)
		mod(&id, &m)
		k := decisionKey(id, m)
		if prev, ok := seen[k]; ok {
			t.Errorf("%s gives the same key as %s", name, prev)
		}
		seen[k] = name
	}
}

func BenchmarkDecisionCacheHit(b *testing.B) {
	id := identity.Identity{Sub: "alice", Issuer: "https://issuer.example", Tenant: "acme", Plan: "pro", Groups: []string{"beta", "staff"}, Kind: identity.KindAPIKey, KeyID: "k123"}
	now := time.Now()
	d := newDecisions(MaxCachedDecisions)
	d.put(decisionKey(id, "echo"), decision{keyID: id.KeyID, sub: id.Sub, issuer: id.Issuer, expires: now.Add(time.Hour)}, d.generation(), now)
	b.ReportAllocs()
	for b.Loop() {
		if !d.get(decisionKey(id, "echo"), now) {
			b.Fatal("miss")
		}
	}
}
