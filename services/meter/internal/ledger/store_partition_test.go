package ledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
	"github.com/jackc/pgx/v5"
)

// pgOnly returns the Postgres backend, skipping (or failing under CI)
// when it is unreachable, as every Postgres test does.
func pgOnly(t *testing.T) dbtest.Backend {
	t.Helper()
	for _, b := range dbtest.Backends {
		if b.Name == "postgres" {
			return b
		}
	}
	t.Fatal("no postgres backend")
	return dbtest.Backend{}
}

func partitions(t *testing.T, s *pgStore) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'usage_records'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// rollupsMatchRecords checks that usage_hourly equals the hourly sums of
// usage_records, group by group.
func rollupsMatchRecords(t *testing.T, s *pgStore) {
	t.Helper()
	var diff int
	err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM (
	(SELECT hour, tenant, sub, issuer, key_id, model_id, requests, cached, input_tokens, output_tokens, total_tokens, cost_micro_usd FROM usage_hourly
	 EXCEPT
	 SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
		count(*), count(*) FILTER (WHERE cached), sum(input_tokens), sum(output_tokens), sum(total_tokens), sum(cost_micro_usd)
	 FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6)
	UNION ALL
	(SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
		count(*), count(*) FILTER (WHERE cached), sum(input_tokens), sum(output_tokens), sum(total_tokens), sum(cost_micro_usd)
	 FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6
	 EXCEPT
	 SELECT hour, tenant, sub, issuer, key_id, model_id, requests, cached, input_tokens, output_tokens, total_tokens, cost_micro_usd FROM usage_hourly)
) d`).Scan(&diff)
	if err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("usage_hourly differs from the sums of usage_records in %d groups", diff)
	}
}

// TestPartitionsRollupsRetention: records land in daily partitions
// created on demand and ahead, rollups follow inserts exactly (never
// duplicates), and retention drops whole old days.
func TestPartitionsRollupsRetention(t *testing.T) {
	t.Parallel()
	st := openStore(t, pgOnly(t)).(*pgStore)
	ctx := context.Background()
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	var recs []bus.UsageRecord
	for i := range 3 {
		r := rec("d"+string(rune('0'+i)), "alice", "m1", 10, 5, day.AddDate(0, 0, i).Add(time.Hour))
		r.CostMicroUSD, r.KeyID = 100, "k1"
		recs = append(recs, r)
	}
	cached := rec("c1", "bob", "m2", 1, 1, day.Add(90*time.Minute))
	cached.Cached = true
	recs = append(recs, cached)
	if n, err := st.InsertBatch(ctx, recs); err != nil || n != 4 {
		t.Fatalf("InsertBatch = %d, %v", n, err)
	}
	// Redelivered records neither insert nor count in the rollups again.
	if n, err := st.InsertBatch(ctx, append(recs, recs[0])); err != nil || n != 0 {
		t.Fatalf("InsertBatch of redeliveries = %d, %v; want 0", n, err)
	}
	rollupsMatchRecords(t, st)
	want := []string{"usage_records_p20260314", "usage_records_p20260315", "usage_records_p20260316"}
	if got := partitions(t, st); !slices.Equal(got, want) {
		t.Errorf("partitions = %v, want %v", got, want)
	}
	if err := st.EnsurePartitions(ctx, day.AddDate(0, 0, 2).Add(23*time.Hour), 2); err != nil {
		t.Fatal(err)
	}
	want = append(want, "usage_records_p20260317", "usage_records_p20260318")
	if got := partitions(t, st); !slices.Equal(got, want) {
		t.Errorf("partitions ahead = %v, want %v", got, want)
	}
	// Whole hours read the rollups; the same range with a ragged end
	// reads the records; both agree.
	q := Query{All: true, From: day, To: day.AddDate(0, 0, 3), GroupBy: GroupUser}
	fromRollups, err := st.Usage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	q.To = q.To.Add(-time.Nanosecond)
	fromRecords, err := st.Usage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := []bus.UsageRow{
		{Group: "alice", Requests: 3, InputTokens: 30, OutputTokens: 15, TotalTokens: 45, CostMicroUSD: 300},
		{Group: "bob", Requests: 1, InputTokens: 1, OutputTokens: 1, TotalTokens: 2, CachedRequests: 1},
	}
	if !slices.Equal(fromRollups, wantRows) || !slices.Equal(fromRecords, wantRows) {
		t.Errorf("by user: rollups %+v, records %+v, want %+v", fromRollups, fromRecords, wantRows)
	}
	keys, err := st.Usage(ctx, Query{All: true, From: day, To: day.AddDate(0, 0, 3), GroupBy: GroupKey})
	if err != nil || len(keys) != 2 || keys[1].Group != "k1" || keys[1].Requests != 3 {
		t.Errorf("by key = %+v, %v", keys, err)
	}

	dropped, err := st.DropPartitionsBefore(ctx, day.AddDate(0, 0, 2))
	if err != nil || !slices.Equal(dropped, want[:2]) {
		t.Fatalf("DropPartitionsBefore = %v, %v; want %v", dropped, err, want[:2])
	}
	if got := partitions(t, st); !slices.Equal(got, want[2:]) {
		t.Errorf("partitions after retention = %v", got)
	}
	var left int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM usage_records`).Scan(&left); err != nil || left != 1 {
		t.Errorf("records after retention = %d, %v; want 1", left, err)
	}
	var hours int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM usage_hourly`).Scan(&hours); err != nil || hours != 4 {
		t.Errorf("rollup rows after retention = %d, %v; want all 4 kept", hours, err)
	}
	// A late record for a dropped day recreates its partition.
	if n, err := st.InsertBatch(ctx, []bus.UsageRecord{rec("late", "alice", "m1", 1, 1, day.Add(5*time.Hour))}); err != nil || n != 1 {
		t.Errorf("late record = %d, %v", n, err)
	}
}

// TestMigrateV1Data: records written under schema version 1 move into
// the partitioned table, with rollups, when version 2 runs.
func TestMigrateV1Data(t *testing.T) {
	t.Parallel()
	b := pgOnly(t)
	url, path := b.Open(t)
	ctx := context.Background()
	s, err := Open(ctx, url, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.(*pgStore)
	v1, err := embedded.ReadFile(dirPG + "/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	st.migrations = fstest.MapFS{dirPG + "/0001_init.sql": {Data: v1}}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.AddDate(0, 0, 1)} {
		if _, err := st.pool.Exec(ctx, `INSERT INTO usage_records (request_id, sub, model_id, input_tokens, output_tokens,
			total_tokens, started_at, finished_at) VALUES ($1, 'alice', 'm', 2, 3, 5, $2, $2)`, "v1-"+string(rune('a'+i)), at); err != nil {
			t.Fatal(err)
		}
	}
	st.migrations = embedded
	if got, err := st.Migrate(ctx); err != nil || !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("Migrate from v1 = %v, %v; want [2 3]", got, err)
	}
	rows, err := st.Usage(ctx, Query{Sub: "alice", From: t0.Truncate(time.Hour), To: t0.Truncate(time.Hour).AddDate(0, 0, 2), GroupBy: GroupDay})
	if err != nil {
		t.Fatal(err)
	}
	want := []bus.UsageRow{
		{Group: t0.Format(time.DateOnly), Requests: 2, InputTokens: 4, OutputTokens: 6, TotalTokens: 10},
		{Group: t0.AddDate(0, 0, 1).Format(time.DateOnly), Requests: 1, InputTokens: 2, OutputTokens: 3, TotalTokens: 5},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("usage after migration = %+v, want %+v", rows, want)
	}
	rollupsMatchRecords(t, st)
	// The same record arriving again after the migration is a duplicate.
	r := rec("v1-a", "alice", "m", 2, 3, t0)
	r.Issuer, r.Tenant, r.ChannelID, r.Provider, r.Status, r.StartedAt = "", "", "", "", "", t0
	if n, err := st.InsertBatch(ctx, []bus.UsageRecord{r}); err != nil || n != 0 {
		t.Errorf("redelivered v1 record = %d, %v; want 0", n, err)
	}
}

// testUsageBuckets sums per slot for one subject of each kind.
func testUsageBuckets(t *testing.T, b dbtest.Backend) {
	s := openStore(t, b)
	ctx := context.Background()
	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	a1 := rec("a1", "alice", "m", 1, 1, base.Add(time.Minute))
	a1.CostMicroUSD = 7
	a2 := rec("a2", "alice", "m", 2, 2, base.Add(9*time.Minute))
	a3 := rec("a3", "alice", "m", 4, 4, base.Add(10*time.Minute))
	a3.KeyID = "k9"
	old := rec("old", "alice", "m", 100, 100, base.Add(-time.Hour))
	bob := rec("b1", "bob", "m", 8, 8, base)
	bob.Tenant = "other"
	if _, err := s.InsertBatch(ctx, []bus.UsageRecord{a1, a2, a3, old, bob}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    Filter
		want []Bucket
	}{
		{"user", Filter{Sub: "alice", Issuer: "iss"}, []Bucket{
			{Start: base, Requests: 2, InputTokens: 3, OutputTokens: 3, TotalTokens: 6, CostMicroUSD: 7},
			{Start: base.Add(10 * time.Minute), Requests: 1, InputTokens: 4, OutputTokens: 4, TotalTokens: 8},
		}},
		{"key", Filter{KeyID: "k9"}, []Bucket{{Start: base.Add(10 * time.Minute), Requests: 1, InputTokens: 4, OutputTokens: 4, TotalTokens: 8}}},
		{"tenant", Filter{Tenant: "acme"}, []Bucket{
			{Start: base, Requests: 2, InputTokens: 3, OutputTokens: 3, TotalTokens: 6, CostMicroUSD: 7},
			{Start: base.Add(10 * time.Minute), Requests: 1, InputTokens: 4, OutputTokens: 4, TotalTokens: 8},
		}},
	} {
		got, err := s.UsageBuckets(ctx, tt.f, base.Add(-time.Minute), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
		for i := range got {
			if !got[i].Start.Equal(tt.want[i].Start) || got[i].Requests != tt.want[i].Requests || got[i].TotalTokens != tt.want[i].TotalTokens ||
				got[i].InputTokens != tt.want[i].InputTokens || got[i].CostMicroUSD != tt.want[i].CostMicroUSD {
				t.Errorf("%s bucket %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

// TestEnsurePartitionConcurrent: replicas creating the same partitions at
// once all succeed.
func TestEnsurePartitionConcurrent(t *testing.T) {
	t.Parallel()
	b := pgOnly(t)
	url, path := b.Open(t)
	ctx := context.Background()
	first, err := Open(ctx, url, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const replicas = 4
	stores := make([]*pgStore, replicas)
	for i := range stores {
		s, err := Open(ctx, url, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s.(*pgStore)
	}
	errs := make(chan error, replicas)
	day := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range stores {
		go func() { errs <- s.EnsurePartitions(ctx, day, 5) }()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Errorf("EnsurePartitions: %v", err)
		}
	}
	if got := partitions(t, first.(*pgStore)); len(got) != 6 {
		t.Errorf("partitions = %v, want 6", got)
	}
}

// TestInsertAfterPartitionDroppedElsewhere: a partition that this store
// believes exists but another replica's retention dropped fails the batch
// once (nothing is stored, so the consumer retries), and the retry
// recreates the partition and stores the batch with its rollups.
func TestInsertAfterPartitionDroppedElsewhere(t *testing.T) {
	t.Parallel()
	b := pgOnly(t)
	url, path := b.Open(t)
	ctx := context.Background()
	open := func() *pgStore {
		s, err := Open(ctx, url, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s.(*pgStore)
	}
	a, other := open(), open()
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	if n, err := a.InsertBatch(ctx, []bus.UsageRecord{rec("x1", "alice", "m1", 1, 1, day.Add(time.Hour))}); err != nil || n != 1 {
		t.Fatalf("InsertBatch = %d, %v", n, err)
	}
	if dropped, err := other.DropPartitionsBefore(ctx, day.AddDate(0, 0, 1)); err != nil || len(dropped) != 1 {
		t.Fatalf("DropPartitionsBefore = %v, %v", dropped, err)
	}
	late := []bus.UsageRecord{rec("x2", "alice", "m1", 2, 2, day.Add(2*time.Hour)), rec("x3", "bob", "m1", 3, 3, day.AddDate(0, 0, 1))}
	if n, err := a.InsertBatch(ctx, late); err == nil {
		t.Fatalf("InsertBatch into a partition dropped elsewhere = %d, nil; want an error", n)
	}
	var left int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM usage_records`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("records after the failed batch = %d, %v; want 0 (the batch is one transaction)", left, err)
	}
	if n, err := a.InsertBatch(ctx, late); err != nil || n != 2 {
		t.Fatalf("retried InsertBatch = %d, %v; want 2", n, err)
	}
	rollupsMatchRecordsSince(t, a, day.Add(2*time.Hour))
}

// rollupsMatchRecordsSince is rollupsMatchRecords for the hours from
// since on (earlier rollups outlive their dropped records by design).
func rollupsMatchRecordsSince(t *testing.T, s *pgStore, since time.Time) {
	t.Helper()
	var diff int
	err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM (
	(SELECT hour, tenant, sub, issuer, key_id, model_id, requests, input_tokens, output_tokens FROM usage_hourly WHERE hour >= $1
	 EXCEPT
	 SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
		count(*), sum(input_tokens), sum(output_tokens)
	 FROM usage_records WHERE finished_at >= $1 GROUP BY 1, 2, 3, 4, 5, 6)
	UNION ALL
	(SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
		count(*), sum(input_tokens), sum(output_tokens)
	 FROM usage_records WHERE finished_at >= $1 GROUP BY 1, 2, 3, 4, 5, 6
	 EXCEPT
	 SELECT hour, tenant, sub, issuer, key_id, model_id, requests, input_tokens, output_tokens FROM usage_hourly WHERE hour >= $1)
) d`, since).Scan(&diff)
	if err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("usage_hourly differs from the sums of usage_records in %d groups", diff)
	}
}

// TestInsertBatchBothPaths: small batches (parameter arrays) and large
// ones (COPY into the staging table) store the same thing: new records
// once across two days, duplicates (stored before, or repeated within the
// batch) skipped, rollups equal to the records, the staging table empty
// after the commit.
func TestInsertBatchBothPaths(t *testing.T) {
	t.Parallel()
	for _, size := range []int{10, pgCopyMin + 10} {
		t.Run(fmt.Sprintf("batch=%d", size), func(t *testing.T) {
			t.Parallel()
			st := openStore(t, pgOnly(t)).(*pgStore)
			ctx := context.Background()
			midnight := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
			mk := func(i int) bus.UsageRecord {
				r := rec(fmt.Sprintf("p-%05d", i), fmt.Sprintf("user-%d", i%7), "m1", int64(i%5+1), 2, midnight.Add(time.Duration(i-size/2)*time.Minute))
				r.Cached, r.Tenant, r.CostMicroUSD = i%3 == 0, fmt.Sprintf("t%d", i%2), 9
				return r
			}
			first := make([]bus.UsageRecord, 0, size)
			for i := range size {
				first = append(first, mk(i))
			}
			if n, err := st.InsertBatch(ctx, first); err != nil || n != int64(size) {
				t.Fatalf("InsertBatch = %d, %v; want %d", n, err, size)
			}
			// Half old, half new, and one new record twice.
			second := slices.Clone(first[size/2:])
			for i := size; i < size+size/2; i++ {
				second = append(second, mk(i))
			}
			second = append(second, mk(size))
			if n, err := st.InsertBatch(ctx, second); err != nil || n != int64(size/2) {
				t.Fatalf("InsertBatch with duplicates = %d, %v; want %d", n, err, size/2)
			}
			rollupsMatchRecords(t, st)
			var total, days int
			if err := st.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT tableoid) FROM usage_records`).Scan(&total, &days); err != nil ||
				total != size+size/2 || days != 2 {
				t.Errorf("usage_records = %d rows in %d partitions, %v; want %d in 2", total, days, err, size+size/2)
			}
			err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
				var staged int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_temp.`+pgStageTable).Scan(&staged); err != nil {
					return err
				}
				if staged != 0 {
					t.Errorf("staging table holds %d rows after commit, want 0", staged)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestInsertBatchDuplicateFallback: a batch is first written without ON
// CONFLICT; a request id already stored, even as its last record, aborts
// that attempt and the batch is written again skipping duplicates, so
// nothing is counted twice. The batches after it skip duplicates from the
// start until one holds none.
func TestInsertBatchDuplicateFallback(t *testing.T) {
	t.Parallel()
	for _, size := range []int{10, pgCopyMin + 10} {
		t.Run(fmt.Sprintf("batch=%d", size), func(t *testing.T) {
			t.Parallel()
			st := openStore(t, pgOnly(t)).(*pgStore)
			ctx := context.Background()
			hour := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
			next := 0
			mk := func(n int) []bus.UsageRecord {
				out := make([]bus.UsageRecord, 0, n)
				for range n {
					out = append(out, rec(fmt.Sprintf("f-%06d", next), fmt.Sprintf("user-%d", next%5), "m1", 1, 2, hour.Add(time.Duration(next)*time.Second)))
					next++
				}
				return out
			}
			insert := func(recs []bus.UsageRecord, want int64, wantDups bool) {
				t.Helper()
				if n, err := st.InsertBatch(ctx, recs); err != nil || n != want {
					t.Fatalf("InsertBatch = %d, %v; want %d", n, err, want)
				}
				if got := st.dupsSeen.Load(); got != wantDups {
					t.Fatalf("dupsSeen = %t after the batch, want %t", got, wantDups)
				}
			}
			first := mk(size)
			insert(first, int64(size), false)
			// New records, then one already stored at the very end.
			insert(append(mk(size), first[size-1]), int64(size), true)
			// All new: written skipping duplicates, and back to the fast path.
			insert(mk(size), int64(size), false)
			// A whole batch redelivered.
			insert(first, 0, true)
			insert(first, 0, true)
			insert(mk(size), int64(size), false)
			var total, requests int64
			if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM usage_records), (SELECT sum(requests) FROM usage_hourly)`).Scan(&total, &requests); err != nil ||
				total != int64(next) || requests != int64(next) {
				t.Errorf("usage_records = %d rows, rollups count %d requests, %v; want %d", total, requests, err, next)
			}
			rollupsMatchRecords(t, st)
		})
	}
}
