package ledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/jackc/pgx/v5"
)

// TestCopyStageRoundTrip: the hand-encoded binary COPY path stores every
// column exactly as the parameter-array path (values encoded by pgx)
// does, including non-ASCII and empty text, large and negative integers, both
// booleans and times before 2000, with sub-microsecond digits and far
// ahead.
func TestCopyStageRoundTrip(t *testing.T) {
	t.Parallel()
	b := pgOnly(t)
	viaCopy := openStore(t, b).(*pgStore)
	viaArrays := openStore(t, b).(*pgStore)
	ctx := context.Background()
	days := []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 3, 15, 12, 30, 0, 123_456_789, time.UTC),
		time.Date(2262, 4, 11, 0, 0, 0, 1_000, time.UTC),
	}
	n := pgCopyMin + 7
	recs := make([]bus.UsageRecord, 0, n)
	for i := range n {
		finished := days[i%len(days)].Add(-time.Duration(i) * time.Nanosecond * 997)
		recs = append(recs, bus.UsageRecord{
			RequestID: fmt.Sprintf("rt-%05d", i), Sub: []string{"", "ü-ser", "日本"}[i%3], Issuer: "https://iss/é",
			Tenant: fmt.Sprintf("t%d", i%4), ChannelID: "ch\ttab", KeyID: []string{"", "k1"}[i%2], ModelID: "m",
			Provider: "p", ConversationID: fmt.Sprintf("c%d", i), InputTokens: int64(i) << 33, OutputTokens: 0,
			TotalTokens: 1<<50 + int64(i), CostMicroUSD: -int64(i) << 20, Cached: i%2 == 0, Estimated: i%3 == 0,
			Status: bus.UsageStatusOK, StartedAt: finished.Add(-time.Duration(i) * time.Millisecond), FinishedAt: finished,
		})
	}
	if got, err := viaCopy.InsertBatch(ctx, recs); err != nil || got != int64(n) {
		t.Fatalf("InsertBatch (COPY) = %d, %v; want %d", got, err, n)
	}
	for chunk := range slices.Chunk(recs, pgCopyMin/2) {
		if _, err := viaArrays.InsertBatch(ctx, chunk); err != nil {
			t.Fatalf("InsertBatch (arrays): %v", err)
		}
	}
	dump := func(s *pgStore) []string {
		rows, err := s.pool.Query(ctx, `SELECT concat_ws('|', request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, estimated, status,
	extract(epoch FROM started_at)::numeric(20, 6), extract(epoch FROM finished_at)::numeric(20, 6))
FROM usage_records ORDER BY request_id`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, want := dump(viaCopy), dump(viaArrays)
	if len(got) != n || len(want) != n {
		t.Fatalf("stored %d rows via COPY and %d via arrays, want %d", len(got), len(want), n)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d via COPY:\n%s\nvia arrays:\n%s", i, got[i], want[i])
		}
	}
	// And the times are the records' own, to the microsecond.
	var fin time.Time
	if err := viaCopy.pool.QueryRow(ctx, `SELECT finished_at FROM usage_records WHERE request_id = 'rt-00000'`).Scan(&fin); err != nil ||
		!fin.Equal(recs[0].FinishedAt.Truncate(time.Microsecond)) {
		t.Errorf("finished_at = %v, %v; want %v", fin, err, recs[0].FinishedAt.Truncate(time.Microsecond))
	}
	rollupsMatchRecords(t, viaCopy)
}

// BenchmarkCopyEncode measures encoding one 5,000-record batch into the
// binary COPY format (no database).
func BenchmarkCopyEncode(b *testing.B) {
	b.ReportAllocs()
	now := time.Now().UTC()
	recs := make([]bus.UsageRecord, 5000)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("req-%08d", i), fmt.Sprintf("user-%d", i%1000), "m1", 100, 200, now)
	}
	for b.Loop() {
		buf := pgCopyBufs.Get().(*pgCopyBuf)
		buf.reset(len(recs))
		for i := range recs {
			buf.appendRow(&recs[i])
		}
		buf.finish()
		pgCopyBufs.Put(buf)
	}
}
