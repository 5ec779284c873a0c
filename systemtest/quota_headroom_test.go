package systemtest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// TestEarlyModelCallRefusedByMeter: with chat.early_model_call and the
// real meter, a request that chat started on the caller's headroom (meter's last answer showed
// plenty) but that meter refuses, because the headroom was used
// meanwhile, is a plain 429, and its tokens are not charged to the quota.
func TestEarlyModelCallRefusedByMeter(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, "")
	cfg.Meter.Plans = map[string]config.QuotaPlan{"thousand": {Day: config.QuotaLimits{TotalTokens: 1000}}}
	cfg.Meter.DefaultPlans.User = "thousand"
	cfg.Chat.EarlyModelCall = true
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post := quotaPoster(t, ctx, dev, "dora")
	resp, body := post("first")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	var first struct {
		Usage struct {
			TotalTokens int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &first); err != nil || first.Usage.TotalTokens == 0 {
		t.Fatalf("first answer %s: %v", body, err)
	}

	// Another replica's request takes all but 5 tokens of dora's day.
	nc, err := bus.ConnectInProcess(dev.Server(), "headroom-test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := bus.NewSubjects("")
	dora := identity.Identity{Sub: "dora", Issuer: dev.Issuer().Issuer(), Kind: identity.KindUser}
	other, err := bus.Request[bus.ReserveResponse](ctx, nc, subj.MeterReserve(), bus.ReserveRequest{
		RequestID: "other-replica", Identity: dora, ModelID: "echo", MaxOutputTokens: 1000 - first.Usage.TotalTokens - 5,
	}, nil)
	if err != nil || !other.Granted {
		t.Fatalf("the other reservation: %+v %v", other, err)
	}

	// chat still believes dora has about 990 tokens left, so it calls the
	// model while it asks meter, which refuses. The model's work is in the
	// ledger as a cancelled request (a request refused before its model
	// call has no ledger row).
	resp, body = post("second")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second request: %d %s, want 429", resp.StatusCode, body)
	}
	rows := waitLedgerRows(t, "sqlite", cfg.SQLitePath(), resp.Header.Get("X-Request-Id"))
	if len(rows) != 1 || rows[0].Status != bus.UsageStatusCancelled || rows[0].InputTokens == 0 {
		t.Fatalf("ledger rows of the refused request %+v", rows)
	}
	// Settling the other request at zero shows what dora is charged: the
	// first request only.
	settled, err := bus.Request[bus.SettleResponse](ctx, nc, subj.MeterSettle(), bus.SettleRequest{
		RequestID: "other-replica", Identity: dora, ModelID: "echo",
	}, nil)
	if err != nil || len(settled.Windows) != 1 {
		t.Fatalf("settle: %+v %v", settled, err)
	}
	if w := settled.Windows[0]; w.Used != first.Usage.TotalTokens {
		t.Fatalf("dora's day window %+v, want used %d: the refused request was charged", w, first.Usage.TotalTokens)
	}
	// With the headroom back, dora is served again.
	if resp, body := post("third"); resp.StatusCode != http.StatusOK {
		t.Fatalf("third request: %d %s", resp.StatusCode, body)
	}
}
