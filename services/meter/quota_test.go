package meter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
)

// TestQuotaPlans runs the meter with a plan: a subject's state is rebuilt
// from the ledger on first use, reserve refuses over the limit with the
// limit named, and settle reports the windows.
func TestQuotaPlans(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		now := finished.Add(time.Hour)
		h := start(t, b, func(c *meter.Config) {
			c.Quota = meter.QuotaConfig{
				Plans:    map[string]meter.Plan{"small": {Day: meter.Limits{TotalTokens: 100}, Month: meter.Limits{SpendMicroUSD: 1000}}},
				Defaults: meter.Assignment{User: "small"},
				Now:      func() time.Time { return now },
			}
		})
		// Usage already in the ledger counts once the subject is rebuilt.
		h.publish(record("old", "alice", 30, 40), "old")
		h.eventually("the record is written", func() bool { return h.rows("usage_records") == 1 })

		ctx := context.Background()
		alice := who("alice")
		r, err := bus.Request[bus.ReserveResponse](ctx, h.nc, h.subj.MeterReserve(),
			bus.ReserveRequest{RequestID: "r1", Identity: alice, InputTokens: 10, MaxOutputTokens: 30, MaxCostMicroUSD: 100}, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := r.Refusal
		if r.Granted || f == nil || f.Scope != "user" || f.Window != "day" || f.Metric != "totalTokens" || f.Used != 70 || f.Limit != 100 ||
			f.ResetsAt != "2026-05-02T00:00:00Z" || f.RetryAfterSeconds != int64(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC).Sub(now)/time.Second) {
			t.Fatalf("reserve over the rebuilt day: %+v %+v", r, f)
		}
		r, err = bus.Request[bus.ReserveResponse](ctx, h.nc, h.subj.MeterReserve(),
			bus.ReserveRequest{RequestID: "r2", Identity: alice, InputTokens: 10, MaxOutputTokens: 20, MaxCostMicroUSD: 100}, nil)
		if err != nil || !r.Granted || len(r.Windows) != 2 {
			t.Fatalf("reserve within: %+v %v", r, err)
		}
		s, err := bus.Request[bus.SettleResponse](ctx, h.nc, h.subj.MeterSettle(),
			bus.SettleRequest{RequestID: "r2", Identity: alice, Usage: bus.Usage{InputTokens: 10, OutputTokens: 5, TotalTokens: 15}, CostMicroUSD: 60}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range s.Windows {
			switch w.Metric {
			case "totalTokens":
				if w.Used != 85 || w.Remaining != 15 {
					t.Errorf("day window after settle: %+v", w)
				}
			case "spendMicroUSD":
				if w.Used != 60 || w.Limit != 1000 || w.ResetsAt != "2026-06-01T00:00:00Z" {
					t.Errorf("month spend window after settle: %+v", w)
				}
			default:
				t.Errorf("unexpected window %+v", w)
			}
		}
		_, err = bus.Request[bus.ReserveResponse](ctx, h.nc, h.subj.MeterReserve(),
			bus.ReserveRequest{RequestID: "r3", Identity: alice, MaxCostMicroUSD: -1}, nil)
		var se *bus.ServiceError
		if !errors.As(err, &se) || !strings.Contains(se.Description, "maxCostMicroUsd must not be negative") {
			t.Errorf("negative cost: %v", err)
		}
	})
}

func TestQuotaConfigInvalid(t *testing.T) {
	t.Parallel()
	cfg := meter.Config{SQLitePath: "x.db", Quota: meter.QuotaConfig{
		Plans: map[string]meter.Plan{"p": {}}, Defaults: meter.Assignment{User: "nope"},
	}}
	err := cfg.Validate()
	if !errors.Is(err, meter.ErrInvalidConfig) || !strings.Contains(err.Error(), `defaults.user names plan "nope"`) {
		t.Errorf("Validate = %v", err)
	}
}
