package quota

import (
	"context"
	"fmt"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

// BenchmarkReserveSettle measures one reserve plus its settle on one
// subject, straight on the KV quota (no micro round trip), with a plan
// that limits every window.
func BenchmarkReserveSettle(b *testing.B) {
	huge := int64(1) << 50
	cfg := Config{
		Plans: map[string]Plan{"p": {
			Rolling24h: Limits{TotalTokens: huge}, Day: Limits{TotalTokens: huge},
			Month: Limits{SpendMicroUSD: huge}, Minute: Limits{Requests: huge},
		}},
		Defaults: Assignment{User: "p"},
	}
	srv := natstest.Start(b)
	kv := benchKV(b, srv)
	q, err := NewKV(cfg, kv, nil, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("r%d", i)
		if r, err := q.Reserve(ctx, bus.ReserveRequest{RequestID: id, Identity: alice, InputTokens: 100, MaxOutputTokens: 500}); err != nil || !r.Granted {
			b.Fatal(r, err)
		}
		if _, err := q.Settle(ctx, bus.SettleRequest{RequestID: id, Identity: alice, Usage: bus.Usage{InputTokens: 100, OutputTokens: 200}}); err != nil {
			b.Fatal(err)
		}
	}
}
