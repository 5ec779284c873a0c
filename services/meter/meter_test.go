package meter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// waitFor bounds every wait for an asynchronous outcome. It is a
// deadline for failure, never an assertion about speed.
const waitFor = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// harness is one running meter service on its own NATS server and database.
type harness struct {
	t         *testing.T
	nc        *nats.Conn
	js        jetstream.JetStream
	subj      bus.Subjects
	url, path string
	cancel    context.CancelFunc
	done      chan error
	// lastSeq is the stream sequence of the last record published.
	lastSeq atomic.Uint64
}

// start runs meter against a fresh database of backend b; mutate may
// adjust the configuration. The service is stopped at cleanup.
func start(t *testing.T, b dbtest.Backend, mutate func(*meter.Config)) *harness {
	t.Helper()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	url, path := b.Open(t)
	cfg := meter.Config{
		Logger: quiet, DatabaseURL: url, SQLitePath: path,
		BatchSize: 50, FlushInterval: 20 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := meter.New(cfg, nc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	meter.SetBackoff(svc, 20*time.Millisecond, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, nc: nc, js: js, subj: bus.NewSubjects(cfg.Prefix), url: url, path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- svc.Run(ctx) }()
	t.Cleanup(func() { _ = h.stop() })
	h.eventually("meter answers", func() bool {
		_, err := bus.Request[bus.ReserveResponse](context.Background(), nc, h.subj.MeterReserve(), bus.ReserveRequest{}, nil)
		var se *bus.ServiceError
		return errors.As(err, &se) // a 400 proves the endpoint is up
	})
	return h
}

// stop cancels Run and returns its result; it is idempotent.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(waitFor):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publish sends rec (or raw bytes) to the USAGE stream with msgID as the
// JetStream de-duplication id.
func (h *harness) publish(payload any, msgID string) {
	h.t.Helper()
	data, ok := payload.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(payload); err != nil {
			h.t.Fatal(err)
		}
	}
	msg := &nats.Msg{Subject: h.subj.Usage("acme"), Data: data, Header: nats.Header{bus.HeaderMsgID: {msgID}}}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := h.js.PublishMsg(ctx, msg)
	if err != nil || ack.Duplicate {
		h.t.Fatalf("publish %s: %v (ack %+v)", msgID, err, ack)
	}
	h.lastSeq.Store(ack.Sequence)
}

func (h *harness) rows(table string) int64 {
	return dbtest.QueryInt(h.t, h.url, h.path, "SELECT count(*) FROM "+table)
}

func (h *harness) consumer() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := h.js.Consumer(ctx, h.subj.StreamUsage(), bus.ConsumerLedger)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// settled reports whether every message published so far was delivered
// and acknowledged (or terminated).
func (h *harness) settled() bool {
	ci := h.consumer()
	// The consumer counts a message as pending only once it has seen it
	// stored, so right after a publish both counts may still be zero: the
	// ack floor must also have reached the last record published.
	return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= h.lastSeq.Load()
}

var finished = time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)

func record(id, sub string, in, out int64) bus.UsageRecord {
	return bus.UsageRecord{
		RequestID: id, Sub: sub, Issuer: "https://issuer", Tenant: "acme", ChannelID: sub, ModelID: "echo",
		Provider: "echo", InputTokens: in, OutputTokens: out, TotalTokens: in + out, Status: bus.UsageStatusOK,
		StartedAt: finished.Add(-time.Second), FinishedAt: finished,
	}
}

func who(sub string, groups ...string) identity.Identity {
	return identity.Identity{Sub: sub, Issuer: "https://issuer", Tenant: "acme", ChannelID: sub, Groups: groups}
}

// forEachBackend runs test as a parallel subtest on SQLite and Postgres.
func forEachBackend(t *testing.T, test func(t *testing.T, b dbtest.Backend)) {
	for _, b := range dbtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

func TestDuplicatesStoredOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, nil)
		r := record("req-dup", "alice", 10, 20)
		for i := range 3 { // distinct Nats-Msg-Ids so JetStream stores all three
			h.publish(r, fmt.Sprintf("req-dup-%d", i))
		}
		h.publish(record("req-other", "alice", 1, 2), "req-other")
		h.eventually("all four messages acknowledged", h.settled)
		if n := h.rows("usage_records"); n != 2 {
			t.Fatalf("usage_records has %d rows, want 2", n)
		}
		got := h.usage(bus.UsageQuery{Identity: who("alice"), From: finished.Add(-time.Hour), To: finished.Add(time.Hour)})
		want := bus.UsageRow{Requests: 2, InputTokens: 11, OutputTokens: 22, TotalTokens: 33}
		if len(got.Rows) != 1 || got.Rows[0] != want {
			t.Fatalf("usage = %+v, want [%+v]", got.Rows, want)
		}
	})
}

func TestPoisonTerminated(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, nil)
		noID := record("", "alice", 1, 1)
		negative := record("req-neg", "alice", -1, 1)
		h.publish([]byte("not json"), "poison-1")
		h.publish(noID, "poison-2")
		h.publish(negative, "poison-3")
		h.publish([]byte(`{"requestId":"req-nul","sub":"a\u0000b"}`), "poison-4")
		h.publish(record("req-good", "alice", 5, 5), "req-good")
		h.eventually("poison terminated and the good record acknowledged", h.settled)
		if n := h.rows("usage_records"); n != 1 {
			t.Fatalf("usage_records has %d rows, want 1 (only the good record)", n)
		}
		if ci := h.consumer(); ci.NumRedelivered != 0 || ci.Delivered.Consumer != 5 {
			t.Fatalf("poison was redelivered: delivered %d, redelivered %d", ci.Delivered.Consumer, ci.NumRedelivered)
		}
	})
}

// TestAckAfterCommit makes the ledger unwritable (its table renamed away),
// publishes records, and shows that they stay unacknowledged and are
// redelivered until the table is back, then all arrive exactly once.
func TestAckAfterCommit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, nil)
		dbtest.Exec(t, h.url, h.path, "ALTER TABLE usage_records RENAME TO usage_records_away")
		const n = 5
		for i := range n {
			id := fmt.Sprintf("req-%d", i)
			h.publish(record(id, "alice", 1, 1), id)
		}
		h.eventually("failed batches redelivered", func() bool {
			ci := h.consumer()
			return ci.NumRedelivered > 0 && ci.NumPending == 0
		})
		if ci := h.consumer(); ci.NumAckPending != n {
			t.Fatalf("%d messages unacknowledged while the ledger fails, want %d", ci.NumAckPending, n)
		}
		if got := h.rows("usage_records_away"); got != 0 {
			t.Fatalf("%d rows written while the ledger fails", got)
		}
		dbtest.Exec(t, h.url, h.path, "ALTER TABLE usage_records_away RENAME TO usage_records")
		h.eventually("records stored after recovery", h.settled)
		if got := h.rows("usage_records"); got != n {
			t.Fatalf("usage_records has %d rows after recovery, want %d", got, n)
		}
	})
}

// TestShutdownFlushes stops meter while a batch is still filling and
// checks that the records it holds are committed and acknowledged.
func TestShutdownFlushes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, func(c *meter.Config) { c.FlushInterval = time.Second; c.BatchSize = 1000 })
		const n = 3
		for i := range n {
			id := fmt.Sprintf("req-%d", i)
			h.publish(record(id, "alice", 1, 1), id)
		}
		h.eventually("records delivered to meter", func() bool { return h.consumer().NumAckPending == n })
		if err := h.stop(); err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
		if got := h.rows("usage_records"); got != n {
			t.Fatalf("usage_records has %d rows after shutdown, want %d", got, n)
		}
		if ci := h.consumer(); ci.NumAckPending != 0 {
			t.Fatalf("%d messages left unacknowledged after shutdown", ci.NumAckPending)
		}
	})
}

func (h *harness) usage(q bus.UsageQuery) bus.UsageResponse {
	h.t.Helper()
	resp, err := bus.Request[bus.UsageResponse](context.Background(), h.nc, h.subj.MeterUsage(), q, nil)
	if err != nil {
		h.t.Fatalf("usage %+v: %v", q, err)
	}
	return resp
}

func TestUsageQuery(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, func(c *meter.Config) { c.AdminGroup = "ops" })
		ctx := context.Background()
		store, err := ledger.Open(ctx, h.url, h.path)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		recs := []bus.UsageRecord{
			record("a1", "alice", 1, 1), record("a2", "alice", 2, 2), record("a3", "alice", 4, 4),
			record("b1", "bob", 8, 8),
		}
		recs[1].ModelID = "other"
		recs[2].FinishedAt = finished.Add(24 * time.Hour)
		if _, err := store.InsertBatch(ctx, recs); err != nil {
			t.Fatal(err)
		}
		from, to := finished.Add(-time.Hour), finished.Add(48*time.Hour)
		tests := []struct {
			name string
			q    bus.UsageQuery
			want []bus.UsageRow
		}{
			{"own total", bus.UsageQuery{Identity: who("alice"), From: from, To: to},
				[]bus.UsageRow{{Requests: 3, InputTokens: 7, OutputTokens: 7, TotalTokens: 14}}},
			{"own by model", bus.UsageQuery{Identity: who("alice"), From: from, To: to, GroupBy: "model"},
				[]bus.UsageRow{
					{Group: "echo", Requests: 2, InputTokens: 5, OutputTokens: 5, TotalTokens: 10},
					{Group: "other", Requests: 1, InputTokens: 2, OutputTokens: 2, TotalTokens: 4},
				}},
			{"own by day", bus.UsageQuery{Identity: who("alice"), Sub: "alice", From: from, To: to, GroupBy: "day"},
				[]bus.UsageRow{
					{Group: "2026-05-01", Requests: 2, InputTokens: 3, OutputTokens: 3, TotalTokens: 6},
					{Group: "2026-05-02", Requests: 1, InputTokens: 4, OutputTokens: 4, TotalTokens: 8},
				}},
			{"own by hour", bus.UsageQuery{Identity: who("alice"), From: from, To: finished.Add(time.Hour), GroupBy: "hour"},
				[]bus.UsageRow{{Group: "2026-05-01T12:00:00Z", Requests: 2, InputTokens: 3, OutputTokens: 3, TotalTokens: 6}}},
			{"admin reads bob", bus.UsageQuery{Identity: who("root", "ops"), Sub: "bob", From: from, To: to},
				[]bus.UsageRow{{Requests: 1, InputTokens: 8, OutputTokens: 8, TotalTokens: 16}}},
			{"other issuer sees nothing", bus.UsageQuery{Identity: identity.Identity{Sub: "alice", Issuer: "elsewhere"}, From: from, To: to},
				[]bus.UsageRow{{}}},
		}
		for _, tt := range tests {
			got := h.usage(tt.q)
			if fmt.Sprint(got.Rows) != fmt.Sprint(tt.want) {
				t.Errorf("%s: rows = %+v, want %+v", tt.name, got.Rows, tt.want)
			}
		}
		refused := []struct {
			name, code, mention string
			q                   bus.UsageQuery
		}{
			{"non-admin reads bob", bus.CodeForbidden, `"ops"`, bus.UsageQuery{Identity: who("alice", "gatehouse-admins"), Sub: "bob", From: from, To: to}},
			{"bad group", bus.CodeBadRequest, `"", "model", "hour", "day"`, bus.UsageQuery{Identity: who("alice"), From: from, To: to, GroupBy: "week"}},
			{"no identity", bus.CodeBadRequest, "identity.sub", bus.UsageQuery{From: from, To: to}},
			{"no from", bus.CodeBadRequest, "from is required", bus.UsageQuery{Identity: who("alice"), To: to}},
			{"no to", bus.CodeBadRequest, "to is required", bus.UsageQuery{Identity: who("alice"), From: from}},
			{"reversed", bus.CodeBadRequest, "after from", bus.UsageQuery{Identity: who("alice"), From: to, To: from}},
			{"too long", bus.CodeBadRequest, "400 days", bus.UsageQuery{Identity: who("alice"), From: from, To: from.Add(401 * 24 * time.Hour)}},
		}
		for _, tt := range refused {
			_, err := bus.Request[bus.UsageResponse](ctx, h.nc, h.subj.MeterUsage(), tt.q, nil)
			var se *bus.ServiceError
			if !errors.As(err, &se) || se.Code != tt.code || !strings.Contains(se.Description, tt.mention) {
				t.Errorf("%s: err = %v, want code %s mentioning %q", tt.name, err, tt.code, tt.mention)
			}
		}
	})
}

func TestReserveSettle(t *testing.T) {
	t.Parallel()
	h := start(t, dbtest.Backends[0], nil) // quotas do not touch the ledger
	ctx := context.Background()
	alice := who("alice")
	type call struct {
		name    string
		subject string
		req     any
		mention string // "" means success
	}
	calls := []call{
		{"reserve ok", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: "r1", Identity: alice, ModelID: "echo", InputTokens: 10, MaxOutputTokens: 100}, ""},
		{"reserve zero tokens ok", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: "r1", Identity: alice}, ""},
		{"reserve no id", h.subj.MeterReserve(), bus.ReserveRequest{Identity: alice}, "requestId is required"},
		{"reserve no identity", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: "r1"}, "identity.sub is required"},
		{"reserve negative input", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: "r1", Identity: alice, InputTokens: -1}, "inputTokens must not be negative"},
		{"reserve negative output", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: "r1", Identity: alice, MaxOutputTokens: -5}, "maxOutputTokens must not be negative"},
		{"reserve long id", h.subj.MeterReserve(), bus.ReserveRequest{RequestID: strings.Repeat("x", meter.MaxRequestIDLen+1), Identity: alice}, "requestId is longer"},
		{"reserve bad json", h.subj.MeterReserve(), json.RawMessage(`{"inputTokens":"many"}`), "invalid JSON"},
		{"settle ok", h.subj.MeterSettle(), bus.SettleRequest{RequestID: "r1", Identity: alice, Usage: bus.Usage{InputTokens: 1, OutputTokens: 2, TotalTokens: 3}}, ""},
		{"settle no id", h.subj.MeterSettle(), bus.SettleRequest{Identity: alice}, "requestId is required"},
		{"settle no identity", h.subj.MeterSettle(), bus.SettleRequest{RequestID: "r1"}, "identity.sub is required"},
		{"settle negative", h.subj.MeterSettle(), bus.SettleRequest{RequestID: "r1", Identity: alice, Usage: bus.Usage{OutputTokens: -2}}, "usage.outputTokens must not be negative"},
		{"settle negative total", h.subj.MeterSettle(), bus.SettleRequest{RequestID: "r1", Identity: alice, Usage: bus.Usage{TotalTokens: -2}}, "usage.totalTokens must not be negative"},
	}
	for _, c := range calls {
		raw, err := bus.Request[json.RawMessage](ctx, h.nc, c.subject, c.req, nil)
		if c.mention != "" {
			var se *bus.ServiceError
			if !errors.As(err, &se) || se.Code != bus.CodeBadRequest || !strings.Contains(se.Description, c.mention) {
				t.Errorf("%s: err = %v, want 400 mentioning %q", c.name, err, c.mention)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		// Without plans every reservation is granted with an empty, non-null window list.
		want := `{"windows":[]}`
		if c.subject == h.subj.MeterReserve() {
			want = `{"granted":true,"windows":[]}`
		}
		if string(raw) != want {
			t.Errorf("%s: reply %s, want %s", c.name, raw, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     meter.Config
		mention string // "" means valid
	}{
		{"sqlite defaults", meter.Config{SQLitePath: "/tmp/x.db"}, ""},
		{"postgres", meter.Config{DatabaseURL: "postgres://u@h/db?search_path=s"}, ""},
		{"postgresql scheme", meter.Config{DatabaseURL: "postgresql://u@h/db"}, ""},
		{"full", meter.Config{Prefix: "a.b", SQLitePath: "x.db", BatchSize: meter.MaxBatchSize, FlushInterval: meter.MaxFlushInterval, AdminGroup: "ops"}, ""},
		{"no store", meter.Config{}, "sqlitePath"},
		{"mysql", meter.Config{DatabaseURL: "mysql://h/db"}, "databaseURL"},
		{"bad prefix", meter.Config{Prefix: "a.>", SQLitePath: "x.db"}, "prefix"},
		{"query in path", meter.Config{SQLitePath: "x.db?mode=memory"}, "sqlitePath"},
		{"negative batch", meter.Config{SQLitePath: "x.db", BatchSize: -1}, "batchSize"},
		{"huge batch", meter.Config{SQLitePath: "x.db", BatchSize: meter.MaxBatchSize + 1}, "batchSize"},
		{"negative writers", meter.Config{SQLitePath: "x.db", LedgerWriters: -1}, "ledgerWriters"},
		{"too many writers", meter.Config{SQLitePath: "x.db", LedgerWriters: meter.MaxLedgerWriters + 1}, "ledgerWriters"},
		{"tiny flush", meter.Config{SQLitePath: "x.db", FlushInterval: time.Millisecond}, "flushInterval"},
		{"long flush", meter.Config{SQLitePath: "x.db", FlushInterval: time.Minute}, "flushInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.mention == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, meter.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tt.mention)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := meter.New(meter.Config{}, nil); !errors.Is(err, meter.ErrInvalidConfig) {
		t.Errorf("New(invalid) = %v", err)
	}
	if _, err := meter.New(meter.Config{SQLitePath: "x.db"}, nil); !errors.Is(err, meter.ErrInvalidConfig) {
		t.Errorf("New(nil conn) = %v", err)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	svc, err := meter.New(meter.Config{Logger: quiet, SQLitePath: dbtest.SQLitePath(t)}, nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- svc.Run(ctx) }()
	}
	// Whichever call comes second is refused at once; cancel ends the other.
	if err := <-done; !errors.Is(err, meter.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first Run = %v, want nil", err)
	}
}

func TestRunFailsOnBadDatabase(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	dir := t.TempDir() // a directory is not a database file
	svc, err := meter.New(meter.Config{Logger: quiet, SQLitePath: dir}, nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err == nil {
		t.Fatal("Run on a directory as the SQLite file succeeded")
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		url, path := b.Open(t)
		cfg := meter.Config{Logger: quiet, DatabaseURL: url, SQLitePath: path}
		for i := range 2 {
			if err := meter.Migrate(context.Background(), cfg); err != nil {
				t.Fatalf("Migrate run %d: %v", i+1, err)
			}
		}
		want := int64(2) // SQLite: 0001, 0002
		if b.Name == "postgres" {
			want = 3 // 0001, 0002, 0003
		}
		if n := dbtest.QueryInt(t, url, path, "SELECT count(*) FROM schema_migrations"); n != want {
			t.Fatalf("schema_migrations has %d rows, want %d", n, want)
		}
		if n := dbtest.QueryInt(t, url, path, "SELECT count(*) FROM usage_records"); n != 0 {
			t.Fatalf("usage_records has %d rows, want 0", n)
		}
	})
}

// TestBatches publishes more records than fit in one batch and checks
// every one is stored and acknowledged.
func TestBatches(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b dbtest.Backend) {
		h := start(t, b, func(c *meter.Config) { c.BatchSize = 16 })
		const n = 100
		for i := range n {
			id := fmt.Sprintf("req-%03d", i)
			h.publish(record(id, "alice", 1, 2), id)
		}
		h.eventually("all records acknowledged", h.settled)
		if got := h.rows("usage_records"); got != n {
			t.Fatalf("usage_records has %d rows, want %d", got, n)
		}
		got := h.usage(bus.UsageQuery{Identity: who("alice"), From: finished.Add(-time.Hour), To: finished.Add(time.Hour)})
		if want := (bus.UsageRow{Requests: n, InputTokens: n, OutputTokens: 2 * n, TotalTokens: 3 * n}); got.Rows[0] != want {
			t.Fatalf("usage = %+v, want %+v", got.Rows, want)
		}
	})
}
