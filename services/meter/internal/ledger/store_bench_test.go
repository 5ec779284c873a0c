package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
)

// BenchmarkInsertBatch measures batch inserts of new records, one
// InsertBatch (one transaction) per iteration, and reports records/s.
// Postgres is the production ledger; SQLite is shown for comparison.
func BenchmarkInsertBatch(b *testing.B) {
	for _, backend := range dbtest.Backends {
		for _, size := range []int{100, 500, 2000, 5000} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend.Name, size), func(b *testing.B) {
				url, path := backend.Open(b)
				ctx := context.Background()
				s, err := Open(ctx, url, path)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if _, err := s.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				batch := make([]bus.UsageRecord, size)
				now := time.Now().UTC()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					b.StopTimer() // building the records is not the ledger's cost
					for j := range batch {
						batch[j] = rec(fmt.Sprintf("b%d-%d", i, j), "alice", "m1", 100, 200, now)
					}
					b.StartTimer()
					n, err := s.InsertBatch(ctx, batch)
					if err != nil || n != int64(size) {
						b.Fatalf("InsertBatch = %d, %v", n, err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkInsertBatchRollups measures Postgres batch inserts whose
// records spread over many rollup rows, like meterbench's: 1000 users in
// 10 tenants on 3 models (about 3000 rollup rows per 5000 records).
func BenchmarkInsertBatchRollups(b *testing.B) {
	for _, backend := range dbtest.Backends {
		if backend.Name != "postgres" {
			continue
		}
		url, path := backend.Open(b)
		ctx := context.Background()
		s, err := Open(ctx, url, path)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		const size = 5000
		batch := make([]bus.UsageRecord, size)
		now := time.Now().UTC()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			for j := range batch {
				k := i*size + j
				batch[j] = rec(fmt.Sprintf("b%08d", k), fmt.Sprintf("user-%d", k%1000), []string{"m1", "m2", "m3"}[k%3], 100, 200, now)
				batch[j].Tenant = fmt.Sprintf("tenant-%d", k%10)
			}
			b.StartTimer()
			n, err := s.InsertBatch(ctx, batch)
			if err != nil || n != size {
				b.Fatalf("InsertBatch = %d, %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
	}
}
