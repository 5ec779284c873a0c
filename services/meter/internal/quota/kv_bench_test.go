package quota

import (
	"context"
	"fmt"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go/jetstream"
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

// BenchmarkKVUpdate times one bare compare-and-set write of a value of
// quota-state size on a file-storage and on a memory-storage bucket: the
// floor of one reserve or settle per budget scope.
func BenchmarkKVUpdate(b *testing.B) {
	for _, c := range []struct {
		st   jetstream.StorageType
		size int
	}{
		{jetstream.FileStorage, 400}, {jetstream.MemoryStorage, 400},
		{jetstream.FileStorage, 3000}, {jetstream.FileStorage, 10000},
	} {
		st := c.st
		b.Run(fmt.Sprintf("%s/%dB", st, c.size), func(b *testing.B) {
			srv := natstest.Start(b)
			js, err := jetstream.New(natstest.Connect(b, srv))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "Q", History: 1, Storage: st})
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, c.size)
			rev, err := kv.Create(ctx, "user.k", val)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if rev, err = kv.Update(ctx, "user.k", val, rev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
