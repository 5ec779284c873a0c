package chat

import (
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

func TestHeadroomTake(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := bus.ReserveRequest{InputTokens: 100, MaxOutputTokens: 300, MaxCostMicroUSD: 50}
	h := newHeadroom(8, HeadroomTTL)
	if h.take("ann", req, now) {
		t.Fatal("a caller meter never answered about fits")
	}
	h.record("ann", []bus.QuotaWindow{
		{Metric: bus.MetricTotalTokens, Remaining: 1000},
		{Metric: bus.MetricRequests, Remaining: 5},
		{Metric: bus.MetricSpend, Remaining: 10_000},
	}, now)
	// 400 total tokens needs 800 left: 1000 fits, and 600 are left after it.
	if !h.take("ann", req, now) {
		t.Fatal("a request with ample headroom does not fit")
	}
	if h.take("ann", req, now) {
		t.Fatal("a second request fits into what the first one took")
	}
	// Every window counts: requests, input, output and spend.
	cases := map[string][]bus.QuotaWindow{
		"requests":      {{Metric: bus.MetricRequests, Remaining: 1}},
		"input tokens":  {{Metric: bus.MetricInputTokens, Remaining: 199}},
		"output tokens": {{Metric: bus.MetricOutputTokens, Remaining: 599}},
		"spend":         {{Metric: bus.MetricSpend, Remaining: 99}, {Metric: bus.MetricTotalTokens, Remaining: 1 << 40}},
		"unknown":       {{Metric: "joules", Remaining: 1 << 40}},
	}
	for name, wins := range cases {
		h.record("bo", wins, now)
		if h.take("bo", req, now) {
			t.Errorf("%s: fits although the window leaves less than %d times the request", name, HeadroomMargin)
		}
	}
	h.record("bo", []bus.QuotaWindow{{Metric: bus.MetricInputTokens, Remaining: 200}, {Metric: bus.MetricOutputTokens, Remaining: 600}}, now)
	if !h.take("bo", req, now) {
		t.Error("exactly the margin does not fit")
	}
	// No limits at all: always fits. Too old, or forgotten: never.
	h.record("cy", []bus.QuotaWindow{}, now)
	if !h.take("cy", req, now.Add(HeadroomTTL)) {
		t.Error("an unlimited caller does not fit within the TTL")
	}
	if h.take("cy", req, now.Add(HeadroomTTL+time.Nanosecond)) {
		t.Error("a hint older than HeadroomTTL was used")
	}
	h.record("cy", nil, now)
	h.forget("cy")
	if h.take("cy", req, now) {
		t.Error("a forgotten caller fits")
	}
}

func TestHeadroomBound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := newHeadroom(2, HeadroomTTL)
	h.record("old", nil, now)
	later := now.Add(HeadroomTTL + time.Second)
	h.record("a", nil, later)
	h.record("b", nil, later) // drops the expired "old"
	if h.len() != 2 || !h.take("a", bus.ReserveRequest{}, later) || !h.take("b", bus.ReserveRequest{}, later) {
		t.Fatalf("%d entries after an expired one was due to go", h.len())
	}
	h.record("c", nil, later) // full of fresh ones: drops one of them
	if h.len() != 2 || !h.take("c", bus.ReserveRequest{}, later) {
		t.Fatalf("%d entries after a record into a full map", h.len())
	}
	// The record's windows are a copy: the caller may reuse its slice.
	wins := []bus.QuotaWindow{{Metric: bus.MetricRequests, Remaining: 1}}
	h.record("d", wins, later)
	wins[0].Remaining = 100
	if h.take("d", bus.ReserveRequest{}, later) {
		t.Fatal("the recorded windows alias the caller's slice")
	}
}

func TestBudgetKey(t *testing.T) {
	t.Parallel()
	base := identity.Identity{Kind: identity.KindUser, Issuer: "iss", Sub: "ann", KeyID: "k1", Plan: "pro", Tenant: "acme", Groups: []string{"a"}}
	other := base
	other.Groups = []string{"b"}
	if budgetKey(base) != budgetKey(other) {
		t.Error("groups, which no budget depends on, change the key")
	}
	for name, mod := range map[string]func(*identity.Identity){
		"kind":   func(i *identity.Identity) { i.Kind = identity.KindAPIKey },
		"issuer": func(i *identity.Identity) { i.Issuer = "other" },
		"sub":    func(i *identity.Identity) { i.Sub = "bo" },
		"key":    func(i *identity.Identity) { i.KeyID = "k2" },
		"plan":   func(i *identity.Identity) { i.Plan = "free" },
		"tenant": func(i *identity.Identity) { i.Tenant = "globex" },
	} {
		id := base
		mod(&id)
		if budgetKey(id) == budgetKey(base) {
			t.Errorf("a different %s gives the same key", name)
		}
	}
}
