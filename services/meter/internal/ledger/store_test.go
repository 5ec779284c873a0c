package ledger

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
)

// t0 is a fixed instant the test records are placed around.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589_793_238, time.UTC)

func rec(id, sub, model string, in, out int64, finished time.Time) bus.UsageRecord {
	return bus.UsageRecord{
		RequestID: id, Sub: sub, Issuer: "iss", Tenant: "acme", ChannelID: sub, ModelID: model,
		Provider: "echo", InputTokens: in, OutputTokens: out, TotalTokens: in + out,
		Status: bus.UsageStatusOK, StartedAt: finished.Add(-time.Second), FinishedAt: finished,
	}
}

// openStore opens and migrates a fresh store of backend b, closed at cleanup.
func openStore(t *testing.T, b dbtest.Backend) Store {
	t.Helper()
	url, path := b.Open(t)
	ctx := context.Background()
	s, err := Open(ctx, url, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, b dbtest.Backend)
	}{
		{"MigrateIdempotent", testMigrateIdempotent},
		{"MigrateVersioned", testMigrateVersioned},
		{"MigrateConcurrent", testMigrateConcurrent},
		{"InsertBatchIdempotent", testInsertBatch},
		{"UsageGroups", testUsageGroups},
		{"UsageRejectsBadQuery", testUsageBadQuery},
		{"UsageBuckets", testUsageBuckets},
	}
	for _, b := range dbtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, b)
				})
			}
		})
	}
}

// wantVersions lists the embedded migration versions of b's dialect.
func wantVersions(b dbtest.Backend) []int {
	if b.Name == "postgres" {
		return []int{1, 2, 3}
	}
	return []int{1, 2}
}

func testMigrateIdempotent(t *testing.T, b dbtest.Backend) {
	url, path := b.Open(t)
	ctx := context.Background()
	all := wantVersions(b)
	for i, want := range [][]int{all, nil} {
		s, err := Open(ctx, url, path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Migrate(ctx)
		if err != nil {
			t.Fatalf("Migrate run %d: %v", i+1, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Migrate run %d applied %v, want %v", i+1, got, want)
		}
		vs, err := s.Versions(ctx)
		if err != nil || !slices.Equal(vs, all) {
			t.Errorf("Versions after run %d = %v, %v; want %v", i+1, vs, err, all)
		}
		_ = s.Close()
	}
}

// testMigrateVersioned applies a later migration on top of an earlier
// schema, and checks that only the new version runs.
func testMigrateVersioned(t *testing.T, b dbtest.Backend) {
	url, path := b.Open(t)
	ctx := context.Background()
	s, err := Open(ctx, url, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	dir := dirSQLite
	if b.Name == "postgres" {
		dir = dirPG
	}
	v1, err := embedded.ReadFile(dir + "/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{dir + "/0001_init.sql": {Data: v1}}
	setMigrations(s, fsys)
	if got, err := s.Migrate(ctx); err != nil || !slices.Equal(got, []int{1}) {
		t.Fatalf("Migrate = %v, %v; want [1]", got, err)
	}
	fsys[dir+"/0002_extra.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE extra_test (id INTEGER PRIMARY KEY);\nINSERT INTO extra_test (id) VALUES (7);")}
	got, err := s.Migrate(ctx)
	if err != nil || !slices.Equal(got, []int{2}) {
		t.Fatalf("Migrate = %v, %v; want [2]", got, err)
	}
	if vs, _ := s.Versions(ctx); !slices.Equal(vs, []int{1, 2}) {
		t.Errorf("Versions = %v, want [1 2]", vs)
	}
	// A failing migration rolls back entirely and is not recorded.
	fsys[dir+"/0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE broken_test (id INTEGER);\nTHIS IS NOT SQL;")}
	if _, err := s.Migrate(ctx); err == nil {
		t.Fatal("broken migration succeeded")
	}
	if vs, _ := s.Versions(ctx); !slices.Equal(vs, []int{1, 2}) {
		t.Errorf("Versions after failed migration = %v, want [1 2]", vs)
	}
	delete(fsys, dir+"/0003_broken.sql")
	fsys[dir+"/0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE broken_test (id INTEGER);")}
	if got, err := s.Migrate(ctx); err != nil || !slices.Equal(got, []int{3}) {
		t.Errorf("table of the failed migration survived its rollback: Migrate = %v, %v", got, err)
	}
}

func setMigrations(s Store, fsys fstest.MapFS) {
	switch s := s.(type) {
	case *pgStore:
		s.migrations = fsys
	case *sqliteStore:
		s.migrations = fsys
	}
}

// testMigrateConcurrent runs migrations from several stores at once, as
// replicas starting together would.
func testMigrateConcurrent(t *testing.T, b dbtest.Backend) {
	url, path := b.Open(t)
	ctx := context.Background()
	const replicas = 3
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied []int
		errs    []error
	)
	for range replicas {
		wg.Go(func() {
			s, err := Open(ctx, url, path)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer s.Close()
			got, err := s.Migrate(ctx)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
			applied = append(applied, got...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	slices.Sort(applied)
	if want := wantVersions(b); !slices.Equal(applied, want) {
		t.Errorf("versions applied across replicas = %v, want %v exactly once", applied, want)
	}
}

func testInsertBatch(t *testing.T, b dbtest.Backend) {
	s := openStore(t, b)
	ctx := context.Background()
	first := []bus.UsageRecord{
		rec("r1", "alice", "m1", 10, 5, t0),
		rec("r2", "alice", "m1", 1, 2, t0),
		rec("r3", "alice", "m2", 100, 50, t0),
	}
	first[2].Cached, first[2].Estimated, first[2].KeyID = true, true, "k1"
	if n, err := s.InsertBatch(ctx, first); err != nil || n != 3 {
		t.Fatalf("InsertBatch = %d, %v; want 3", n, err)
	}
	// Redelivered records are skipped, even twice in one batch.
	again := []bus.UsageRecord{first[0], rec("r4", "alice", "m1", 1, 1, t0), first[2], first[0]}
	if n, err := s.InsertBatch(ctx, again); err != nil || n != 1 {
		t.Fatalf("InsertBatch with duplicates = %d, %v; want 1", n, err)
	}
	if n, err := s.InsertBatch(ctx, nil); err != nil || n != 0 {
		t.Fatalf("InsertBatch(nil) = %d, %v", n, err)
	}
	rows, err := s.Usage(ctx, Query{Sub: "alice", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []bus.UsageRow{{Requests: 4, InputTokens: 112, OutputTokens: 58, TotalTokens: 170, CachedRequests: 1}}
	if !slices.Equal(rows, want) {
		t.Errorf("Usage = %+v, want %+v", rows, want)
	}
}

func testUsageGroups(t *testing.T, b dbtest.Backend) {
	s := openStore(t, b)
	ctx := context.Background()
	hour := t0.Truncate(time.Hour)
	recs := []bus.UsageRecord{
		rec("a1", "alice", "m1", 1, 1, hour),                          // first instant of the range
		rec("a2", "alice", "m2", 2, 2, hour.Add(30*time.Minute)),      // same hour
		rec("a3", "alice", "m1", 4, 4, hour.Add(2*time.Hour)),         // later hour, same day
		rec("a4", "alice", "m1", 8, 8, hour.Add(24*time.Hour)),        // next day
		rec("a5", "alice", "m1", 16, 16, hour.Add(48*time.Hour)),      // exactly To: excluded
		rec("a6", "alice", "m1", 32, 32, hour.Add(-time.Millisecond)), // before From: excluded
		rec("b1", "bob", "m1", 64, 64, hour),                          // another user
	}
	other := rec("a7", "alice", "m1", 128, 128, hour) // same sub, other issuer
	other.Issuer = "other-iss"
	recs = append(recs, other)
	if _, err := s.InsertBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	q := Query{Sub: "alice", Issuer: "iss", From: hour, To: hour.Add(48 * time.Hour)}
	day := hour.Format("2006-01-02")
	nextDay := hour.Add(24 * time.Hour).Format("2006-01-02")
	h := func(d time.Duration) string { return hour.Add(d).Format("2006-01-02T15:00:00Z") }
	tests := []struct {
		group  string
		issuer string
		want   []bus.UsageRow
	}{
		{GroupNone, "iss", []bus.UsageRow{{Requests: 4, InputTokens: 15, OutputTokens: 15, TotalTokens: 30}}},
		{GroupNone, "", []bus.UsageRow{{Requests: 5, InputTokens: 143, OutputTokens: 143, TotalTokens: 286}}},
		{GroupModel, "iss", []bus.UsageRow{
			{Group: "m1", Requests: 3, InputTokens: 13, OutputTokens: 13, TotalTokens: 26},
			{Group: "m2", Requests: 1, InputTokens: 2, OutputTokens: 2, TotalTokens: 4},
		}},
		{GroupHour, "iss", []bus.UsageRow{
			{Group: h(0), Requests: 2, InputTokens: 3, OutputTokens: 3, TotalTokens: 6},
			{Group: h(2 * time.Hour), Requests: 1, InputTokens: 4, OutputTokens: 4, TotalTokens: 8},
			{Group: h(24 * time.Hour), Requests: 1, InputTokens: 8, OutputTokens: 8, TotalTokens: 16},
		}},
		{GroupDay, "iss", []bus.UsageRow{
			{Group: day, Requests: 3, InputTokens: 7, OutputTokens: 7, TotalTokens: 14},
			{Group: nextDay, Requests: 1, InputTokens: 8, OutputTokens: 8, TotalTokens: 16},
		}},
	}
	for _, tt := range tests {
		q.GroupBy, q.Issuer = tt.group, tt.issuer
		rows, err := s.Usage(ctx, q)
		if err != nil {
			t.Fatalf("Usage(%q): %v", tt.group, err)
		}
		if !slices.Equal(rows, tt.want) {
			t.Errorf("Usage(group %q, issuer %q) =\n%+v\nwant\n%+v", tt.group, tt.issuer, rows, tt.want)
		}
	}
	// No records in range: one zero row ungrouped, no rows grouped.
	empty := Query{Sub: "nobody", From: hour, To: hour.Add(time.Hour)}
	if rows, err := s.Usage(ctx, empty); err != nil || !slices.Equal(rows, []bus.UsageRow{{}}) {
		t.Errorf("empty ungrouped Usage = %+v, %v", rows, err)
	}
	empty.GroupBy = GroupDay
	if rows, err := s.Usage(ctx, empty); err != nil || rows == nil || len(rows) != 0 {
		t.Errorf("empty grouped Usage = %#v, %v; want empty non-nil", rows, err)
	}
}

func testUsageBadQuery(t *testing.T, b dbtest.Backend) {
	s := openStore(t, b)
	ctx := context.Background()
	for _, q := range []Query{
		{From: t0, To: t0.Add(time.Hour)},
		{Sub: "a", From: t0, To: t0},
		{Sub: "a", From: t0, To: t0.Add(time.Hour), GroupBy: "week"},
	} {
		if _, err := s.Usage(ctx, q); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Usage(%+v) = %v, want ErrBadQuery", q, err)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := Open(ctx, "mysql://x", ""); !errors.Is(err, ErrUnsupportedURL) {
		t.Errorf("mysql url: %v", err)
	}
	if _, err := Open(ctx, "", ""); !errors.Is(err, ErrNoSQLitePath) {
		t.Errorf("no path: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{dirPG, dirSQLite} {
		ms, err := loadMigrations(embedded, dir)
		if err != nil || len(ms) == 0 || ms[0].version != 1 {
			t.Errorf("embedded %s: %v %+v", dir, err, ms)
		}
	}
	bad := map[string]fstest.MapFS{
		"unnumbered": {"m/init.sql": {}},
		"zero":       {"m/0000_x.sql": {}},
		"not sql":    {"m/0001_x.txt": {}},
		"duplicate":  {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"empty":      {"m/README": {Mode: 0o755 | 1<<31}},
	}
	for name, fsys := range bad {
		if _, err := loadMigrations(fsys, "m"); !errors.Is(err, ErrBadMigration) {
			t.Errorf("%s: err = %v, want ErrBadMigration", name, err)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0010_b.sql": {}, "m/0002_a.sql": {}}, "m")
	if err != nil || ms[0].version != 2 || ms[1].version != 10 {
		t.Errorf("not sorted by version: %+v %v", ms, err)
	}
}
