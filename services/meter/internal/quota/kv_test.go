package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // TestCalendarBoundary needs America/New_York everywhere

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) add(d time.Duration) { c.set(c.Now().Add(d)) }

// bucketKV returns a fresh quota bucket on a real NATS server, reached
// through its own connection.
func bucketKV(t *testing.T, srv *server.Server) jetstream.KeyValue { return benchKV(t, srv) }

func benchKV(t testing.TB, srv *server.Server) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "QUOTA", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// newQuota runs a KV quota with cfg on a fresh server and clock.
func newQuota(t *testing.T, cfg Config, start time.Time) (*KV, *clock) {
	t.Helper()
	clk := &clock{t: start}
	cfg.Now = clk.Now
	q, err := NewKV(cfg, bucketKV(t, natstest.Start(t)), nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return q, clk
}

var alice = identity.Identity{Sub: "alice", Issuer: "https://dev", Tenant: "acme"}

func reserve(t *testing.T, q *KV, id string, who identity.Identity, in, maxOut int64) bus.ReserveResponse {
	t.Helper()
	r, err := q.Reserve(context.Background(), bus.ReserveRequest{RequestID: id, Identity: who, InputTokens: in, MaxOutputTokens: maxOut})
	if err != nil {
		t.Fatalf("Reserve %s: %v", id, err)
	}
	return r
}

func settle(t *testing.T, q *KV, id string, who identity.Identity, in, out int64) bus.SettleResponse {
	t.Helper()
	r, err := q.Settle(context.Background(), bus.SettleRequest{RequestID: id, Identity: who,
		Usage: bus.Usage{InputTokens: in, OutputTokens: out, TotalTokens: in + out}})
	if err != nil {
		t.Fatalf("Settle %s: %v", id, err)
	}
	return r
}

// window finds one window of a response.
func window(t *testing.T, ws []bus.QuotaWindow, scope, win, metric string) bus.QuotaWindow {
	t.Helper()
	for _, w := range ws {
		if w.Scope == scope && w.Window == win && w.Metric == metric {
			return w
		}
	}
	t.Fatalf("no %s/%s/%s window in %+v", scope, win, metric, ws)
	return bus.QuotaWindow{}
}

func wantRefusal(t *testing.T, r bus.ReserveResponse, scope, win, metric string, used, limit int64, resets time.Time, now time.Time) {
	t.Helper()
	if r.Granted || r.Refusal == nil {
		t.Fatalf("granted, want a refusal by %s/%s/%s: %+v", scope, win, metric, r)
	}
	f := r.Refusal
	if f.Scope != scope || f.Window != win || f.Metric != metric || f.Used != used || f.Limit != limit {
		t.Errorf("refusal = %+v, want %s/%s/%s used %d limit %d", f, scope, win, metric, used, limit)
	}
	if f.ResetsAt != resets.UTC().Format(time.RFC3339) {
		t.Errorf("resetsAt = %s, want %s", f.ResetsAt, resets.UTC().Format(time.RFC3339))
	}
	if want := int64(resets.Sub(now).Seconds() + 0.999); f.RetryAfterSeconds != max(want, 1) {
		t.Errorf("retryAfterSeconds = %d, want %d", f.RetryAfterSeconds, max(want, 1))
	}
}

// TestRollingWindow: usage counts for 24 hours from the start of its
// 10-minute bucket, then leaves the window.
func TestRollingWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)
	b0 := t0.Truncate(BucketWidth)
	q, clk := newQuota(t, Config{
		Plans:    map[string]Plan{"p": {Rolling24h: Limits{TotalTokens: 1000}}},
		Defaults: Assignment{User: "p"},
	}, t0)
	reserve(t, q, "r1", alice, 100, 500)
	s := settle(t, q, "r1", alice, 100, 500)
	if w := window(t, s.Windows, ScopeUser, WindowRolling24h, MetricTotalTokens); w.Used != 600 || w.Remaining != 400 ||
		w.ResetsAt != b0.Add(24*time.Hour).Format(time.RFC3339) {
		t.Errorf("after settle: %+v", w)
	}
	clk.add(3 * time.Hour)
	reserve(t, q, "r2", alice, 100, 200)
	settle(t, q, "r2", alice, 100, 200) // 900 used, in two buckets

	clk.set(b0.Add(24*time.Hour - time.Second))
	r := reserve(t, q, "r3", alice, 100, 200)
	// Once the first bucket leaves, 300 are used and 300 more fit.
	wantRefusal(t, r, ScopeUser, WindowRolling24h, MetricTotalTokens, 900, 1000, b0.Add(24*time.Hour), clk.Now())

	clk.set(b0.Add(24 * time.Hour))
	r = reserve(t, q, "r4", alice, 100, 200)
	if !r.Granted {
		t.Fatalf("after the first bucket left the window: %+v", r)
	}
	if w := window(t, r.Windows, ScopeUser, WindowRolling24h, MetricTotalTokens); w.Used != 600 {
		t.Errorf("used after the first bucket left = %d, want 600 (300 settled + 300 reserved)", w.Used)
	}
	// Everything leaves the window a day after the last bucket.
	settle(t, q, "r4", alice, 1, 1)
	clk.set(b0.Add(48 * time.Hour))
	r = reserve(t, q, "r5", alice, 0, 1000)
	if !r.Granted {
		t.Fatalf("a day after the last use: %+v", r)
	}
}

// TestCalendarBoundary: day and month limits reset at midnight and on the
// first of the month in the configured zone, not in UTC.
func TestCalendarBoundary(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 30, 23, 50, 0, 0, ny) // 04:50 UTC on Jan 31
	q, clk := newQuota(t, Config{
		Plans:    map[string]Plan{"p": {Day: Limits{InputTokens: 150}, Month: Limits{InputTokens: 220}}},
		Defaults: Assignment{User: "p"},
		Location: ny,
	}, t0)
	reserve(t, q, "d1", alice, 100, 0)
	settle(t, q, "d1", alice, 100, 0)
	midnight := time.Date(2026, 1, 31, 0, 0, 0, 0, ny)
	wantRefusal(t, reserve(t, q, "d2", alice, 51, 0), ScopeUser, WindowDay, MetricInputTokens, 100, 150, midnight, clk.Now())

	clk.set(midnight) // a new day in New York, still Jan 31 in UTC for hours
	r := reserve(t, q, "d3", alice, 100, 0)
	if !r.Granted {
		t.Fatalf("new local day: %+v", r)
	}
	if w := window(t, r.Windows, ScopeUser, WindowMonth, MetricInputTokens); w.Used != 200 {
		t.Errorf("month used = %d, want 200", w.Used)
	}
	settle(t, q, "d3", alice, 100, 0)

	// The day has room for 40 more, the month does not.
	nextMonth := time.Date(2026, 2, 1, 0, 0, 0, 0, ny)
	clk.set(time.Date(2026, 1, 31, 12, 0, 0, 0, ny))
	wantRefusal(t, reserve(t, q, "d4", alice, 40, 0), ScopeUser, WindowMonth, MetricInputTokens, 200, 220, nextMonth, clk.Now())

	clk.set(nextMonth)
	r = reserve(t, q, "d5", alice, 100, 0)
	if !r.Granted {
		t.Fatalf("new local month: %+v", r)
	}
	if w := window(t, r.Windows, ScopeUser, WindowMonth, MetricInputTokens); w.Used != 100 ||
		w.ResetsAt != time.Date(2026, 3, 1, 0, 0, 0, 0, ny).UTC().Format(time.RFC3339) {
		t.Errorf("month window in February: %+v", w)
	}
}

// TestRequestsPerMinute: the minute window counts requests, reservations
// included, and resets on the next minute.
func TestRequestsPerMinute(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 1, 8, 0, 30, 0, time.UTC)
	q, clk := newQuota(t, Config{
		Plans:    map[string]Plan{"p": {Minute: Limits{Requests: 2}}},
		Defaults: Assignment{User: "p"},
	}, t0)
	reserve(t, q, "m1", alice, 1, 1)
	reserve(t, q, "m2", alice, 1, 1)
	wantRefusal(t, reserve(t, q, "m3", alice, 1, 1), ScopeUser, WindowMinute, MetricRequests, 2, 2,
		time.Date(2026, 5, 1, 8, 1, 0, 0, time.UTC), t0)
	settle(t, q, "m1", alice, 1, 1)
	settle(t, q, "m2", alice, 1, 1)
	clk.set(time.Date(2026, 5, 1, 8, 1, 0, 0, time.UTC))
	if r := reserve(t, q, "m4", alice, 1, 1); !r.Granted {
		t.Fatalf("next minute: %+v", r)
	}
}

// TestReservationExpiry: an unsettled reservation stops counting after
// the TTL; a late settle still counts its actual usage, once.
func TestReservationExpiry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)
	q, clk := newQuota(t, Config{
		Plans:          map[string]Plan{"p": {Day: Limits{TotalTokens: 1000}}},
		Defaults:       Assignment{User: "p"},
		ReservationTTL: time.Minute,
	}, t0)
	reserve(t, q, "x1", alice, 0, 800)
	r := reserve(t, q, "x2", alice, 0, 300)
	if r.Granted || r.Refusal.Used != 800 {
		t.Fatalf("with 800 reserved: %+v", r)
	}
	clk.add(time.Minute - time.Nanosecond)
	if r := reserve(t, q, "x3", alice, 0, 300); r.Granted {
		t.Fatalf("reservation expired early: %+v", r)
	}
	clk.add(time.Nanosecond)
	r = reserve(t, q, "x4", alice, 0, 300)
	if !r.Granted {
		t.Fatalf("expired reservation still counts: %+v", r)
	}
	if w := window(t, r.Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != 300 {
		t.Errorf("used = %d, want 300 (only x4 reserved)", w.Used)
	}
	// x1 settles late: its actual usage counts, and only once.
	s := settle(t, q, "x1", alice, 0, 50)
	s = settle(t, q, "x1", alice, 0, 50)
	if w := window(t, s.Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != 350 {
		t.Errorf("used after late settle twice = %d, want 350", w.Used)
	}
}

// TestMultiBudgetRelease: when a later budget refuses, what the earlier
// ones reserved is released.
func TestMultiBudgetRelease(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)
	q, _ := newQuota(t, Config{
		Plans: map[string]Plan{
			"key":    {Day: Limits{TotalTokens: 10_000}},
			"user":   {Day: Limits{TotalTokens: 5_000}},
			"tenant": {Day: Limits{TotalTokens: 100}},
		},
		Defaults: Assignment{Key: "key", User: "user", Tenant: "tenant"},
	}, t0)
	who := alice
	who.KeyID = "k1"
	r := reserve(t, q, "t1", who, 50, 100)
	if r.Granted || r.Refusal.Scope != ScopeTenant {
		t.Fatalf("want the tenant to refuse: %+v", r)
	}
	ws, err := q.Windows(context.Background(), who)
	if err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{ScopeKey, ScopeUser, ScopeTenant} {
		if w := window(t, ws, scope, WindowDay, MetricTotalTokens); w.Used != 0 {
			t.Errorf("%s still holds %d after the refusal", scope, w.Used)
		}
	}
	r = reserve(t, q, "t2", who, 50, 50)
	if !r.Granted || len(r.Windows) != 3 {
		t.Fatalf("within every budget: %+v", r)
	}
	s := settle(t, q, "t2", who, 40, 20)
	for _, scope := range []string{ScopeKey, ScopeUser, ScopeTenant} {
		if w := window(t, s.Windows, scope, WindowDay, MetricTotalTokens); w.Used != 60 {
			t.Errorf("%s used %d after settle, want 60", scope, w.Used)
		}
	}
}

// TestPlanChoice: explicit assignments beat identity.Plan, which beats
// the default; an unknown identity.Plan falls back to the default.
func TestPlanChoice(t *testing.T) {
	t.Parallel()
	q, _ := newQuota(t, Config{
		Plans: map[string]Plan{
			"small": {Day: Limits{Requests: 1}},
			"big":   {Day: Limits{Requests: 100}},
			"vip":   {Day: Limits{Requests: 1000}},
		},
		Defaults: Assignment{User: "small"},
		Users:    map[string]string{"carol": "vip"},
	}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		who  identity.Identity
		want int64
	}{
		{identity.Identity{Sub: "dave"}, 1},
		{identity.Identity{Sub: "erin", Plan: "big"}, 100},
		{identity.Identity{Sub: "frank", Plan: "nope"}, 1},
		{identity.Identity{Sub: "carol", Plan: "big"}, 1000},
	} {
		ws, err := q.Windows(context.Background(), tt.who)
		if err != nil {
			t.Fatal(err)
		}
		if w := window(t, ws, ScopeUser, WindowDay, MetricRequests); w.Limit != tt.want {
			t.Errorf("%s (plan %q): limit %d, want %d", tt.who.Sub, tt.who.Plan, w.Limit, tt.want)
		}
	}
}

// TestCachedAnswers: cached answers are free unless the plan counts them,
// whether they were reserved as cached, reserved as a miss or not reserved
// at all (the reservation expired).
func TestCachedAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		reserve          bool
		reservedAsCached bool
		settledAsCached  bool
	}{
		{"reserved cached", true, true, false},
		{"reserved as a miss", true, false, true},
		{"not reserved", false, false, true},
	}
	for _, tc := range cases {
		for _, count := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/countCached=%v", tc.name, count), func(t *testing.T) {
				t.Parallel()
				q, _ := newQuota(t, Config{
					Plans:    map[string]Plan{"p": {Day: Limits{TotalTokens: 100}, CountCached: count}},
					Defaults: Assignment{User: "p"},
				}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
				ctx := context.Background()
				if tc.reserve {
					r, err := q.Reserve(ctx, bus.ReserveRequest{RequestID: "c1", Identity: alice, InputTokens: 10, MaxOutputTokens: 50, Cached: tc.reservedAsCached})
					if err != nil || !r.Granted {
						t.Fatalf("Reserve: %+v, %v", r, err)
					}
				}
				s, err := q.Settle(ctx, bus.SettleRequest{RequestID: "c1", Identity: alice,
					Usage: bus.Usage{InputTokens: 10, OutputTokens: 30, TotalTokens: 40, Cached: tc.settledAsCached}})
				if err != nil {
					t.Fatalf("Settle: %v", err)
				}
				want := int64(0)
				if count {
					want = 40
				}
				if w := window(t, s.Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != want {
					t.Errorf("used after a cached answer = %d, want %d", w.Used, want)
				}
				// Nothing stays reserved: a miss of the whole remaining day fits.
				rest := 100 - want
				r, err := q.Reserve(ctx, bus.ReserveRequest{RequestID: "c2", Identity: alice, InputTokens: rest})
				if err != nil || !r.Granted {
					t.Fatalf("a %d-token request after the cached answer: %+v, %v", rest, r, err)
				}
			})
		}
	}
}

// TestReplicasNeverOverspend runs two quota replicas on separate
// connections against one bucket; concurrent reservations never exceed
// the limit, and exactly as many as fit are granted.
func TestReplicasNeverOverspend(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	cfg := Config{Plans: map[string]Plan{"p": {Day: Limits{TotalTokens: 2_000}}}, Defaults: Assignment{User: "p"}}
	clk := &clock{t: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	var replicas [2]*KV
	for i := range replicas {
		q, err := NewKV(cfg, bucketKV(t, srv), nil, quiet)
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = q
	}
	const requests, each = 60, 100 // 6000 asked, 2000 fit
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
		errs    []error
	)
	for i := range requests {
		wg.Go(func() {
			q := replicas[i%2]
			id := fmt.Sprintf("c%d", i)
			r, err := q.Reserve(context.Background(), bus.ReserveRequest{RequestID: id, Identity: alice, InputTokens: 20, MaxOutputTokens: each - 20})
			if err == nil && r.Granted {
				_, err = q.Settle(context.Background(), bus.SettleRequest{RequestID: id, Identity: alice, Usage: bus.Usage{InputTokens: 20, OutputTokens: each - 20}})
			} else if err == nil && (r.Refusal == nil || r.Refusal.Window != WindowDay || r.Refusal.Metric != MetricTotalTokens) {
				err = fmt.Errorf("refusal without a clear limit: %+v", r)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if r.Granted {
				granted++
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if granted != 2000/each {
		t.Errorf("granted %d requests of %d tokens under a 2000 limit, want exactly %d", granted, each, 2000/each)
	}
	ws, err := replicas[0].Windows(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if w := window(t, ws, ScopeUser, WindowDay, MetricTotalTokens); w.Used != int64(granted*each) || w.Used > 2000 {
		t.Errorf("used %d, want %d (never above 2000)", w.Used, granted*each)
	}
}

// TestRebuildFromLedger: a subject with no state is rebuilt from the
// ledger's records.
func TestRebuildFromLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := ledger.Open(ctx, "", filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	rec := func(id string, at time.Time, total int64) bus.UsageRecord {
		return bus.UsageRecord{RequestID: id, Sub: "alice", Issuer: "https://dev", Tenant: "acme", ModelID: "m",
			InputTokens: total / 2, OutputTokens: total - total/2, TotalTokens: total, CostMicroUSD: total * 10,
			Status: bus.UsageStatusOK, StartedAt: at, FinishedAt: at}
	}
	if _, err := store.InsertBatch(ctx, []bus.UsageRecord{
		rec("old", now.AddDate(0, -1, 0), 1000),                                         // last month: nowhere
		rec("month", now.AddDate(0, 0, -3), 100),                                        // this month, not the rolling day
		rec("rolling", now.Add(-20*time.Hour), 10),                                      // yesterday, within 24 h
		rec("today", now.Add(-time.Hour), 1),                                            // today
		{RequestID: "bob", Sub: "bob", TotalTokens: 7, FinishedAt: now, StartedAt: now}, // someone else
	}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Plans: map[string]Plan{"p": {
			Rolling24h: Limits{TotalTokens: 1 << 40}, Day: Limits{TotalTokens: 1 << 40},
			Month: Limits{TotalTokens: 1 << 40, SpendMicroUSD: 1 << 40},
		}},
		Defaults: Assignment{User: "p", Tenant: "p"},
		Now:      func() time.Time { return now },
	}
	q, err := NewKV(cfg, bucketKV(t, natstest.Start(t)), store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := q.Windows(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{ScopeUser, ScopeTenant} {
		for _, c := range []struct {
			win, metric string
			want        int64
		}{
			{WindowRolling24h, MetricTotalTokens, 11},
			{WindowDay, MetricTotalTokens, 1},
			{WindowMonth, MetricTotalTokens, 111},
			{WindowMonth, MetricSpend, 1110},
		} {
			if w := window(t, ws, scope, c.win, c.metric); w.Used != c.want {
				t.Errorf("%s %s %s rebuilt = %d, want %d", scope, c.win, c.metric, w.Used, c.want)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative limit", Config{Plans: map[string]Plan{"p": {Day: Limits{TotalTokens: -1}}}}, "plans.p.day.totalTokens must not be negative"},
		{"unknown default", Config{Plans: map[string]Plan{"p": {}}, Defaults: Assignment{Tenant: "q"}}, `defaults.tenant names plan "q"`},
		{"unknown user plan", Config{Plans: map[string]Plan{"p": {}}, Users: map[string]string{"bob": "gold"}}, `users[bob] names plan "gold"`},
		{"ttl", Config{ReservationTTL: time.Millisecond}, "reservationTTL 1ms is outside 1s..24h0m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if err := (Config{Plans: map[string]Plan{"p": {Day: Limits{Requests: 5}}}, Defaults: Assignment{User: "p"}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
