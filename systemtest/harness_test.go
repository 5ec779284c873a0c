package systemtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// testDatabaseURLEnv names the variable that points tests at Postgres.
const testDatabaseURLEnv = "GATEHOUSE_TEST_DATABASE_URL"

const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// postgresSchema creates a schema of its own on the test Postgres and
// returns a URL whose search_path points at it; the schema is dropped when
// the test ends. Without Postgres the test skips, or fails under CI=true.
func postgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(testDatabaseURLEnv)
	if base == "" {
		base = defaultTestDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Postgres at %s is required under CI: %v", base, err)
		}
		t.Skipf("Postgres not reachable at %s (set %s): %v", base, testDatabaseURLEnv, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "gh_sys_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// devConfig is a configuration for an in-process system on free ports.
func devConfig(t testing.TB, databaseURL string) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.LogLevel = "warn"
	cfg.Edge.Addr = "127.0.0.1:0"
	cfg.Meter.DatabaseURL = databaseURL
	cfg.Meter.FlushInterval = 20 * time.Millisecond
	return cfg
}

// startDev runs `gatehouse dev` in-process until the test ends.
func startDev(t testing.TB, cfg config.Config) *stack.Dev {
	t.Helper()
	dev, err := stack.NewDev(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- dev.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("dev stack stopped with error: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("dev stack did not stop within 60s")
		}
	})
	select {
	case <-dev.Ready():
	case err := <-errc:
		t.Fatalf("dev stack failed to start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev stack not ready within 60s")
	}
	return dev
}

// referenceRequest is what the reference browser client publishes: the
// Events client JSON-encodes the string that the UI already JSON-encoded.
func referenceRequest(t testing.TB, text, model, conversation string) string {
	t.Helper()
	obj := map[string]any{
		"messages":       []any{map[string]any{"role": "user", "content": []any{map[string]any{"text": text}}}},
		"modelId":        model,
		"conversationId": conversation,
	}
	once, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := json.Marshal(string(once))
	if err != nil {
		t.Fatal(err)
	}
	return string(twice)
}

// collectAnswer reads data frames for subscription subID until the final
// metadata event or an error event, and returns the decoded events.
func collectAnswer(ctx context.Context, t testing.TB, c *appsyncClient, subID string) []bus.Event {
	t.Helper()
	var events []bus.Event
	for {
		f := c.mustNext(ctx)
		if f.Type != "data" {
			t.Fatalf("unexpected frame while streaming: %+v", f)
		}
		if f.ID != subID {
			t.Fatalf("data for subscription %q, want %q", f.ID, subID)
		}
		var ev bus.Event
		if err := json.Unmarshal([]byte(eventText(t, f)), &ev); err != nil {
			t.Fatalf("event is not a chat event: %s: %v", f.Event, err)
		}
		events = append(events, ev)
		if ev.Metadata != nil || ev.Error != nil {
			return events
		}
	}
}

// ledgerRow is one usage_records row, as the system tests check it.
type ledgerRow struct {
	Sub, ModelID, Status                   string
	InputTokens, OutputTokens, TotalTokens int64
	CostMicroUSD                           int64
}

// waitLedgerRows polls the ledger until requestID has at least one row, and
// returns all its rows.
func waitLedgerRows(t testing.TB, driver, dsn, requestID string) []ledgerRow {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := "SELECT sub, model_id, status, input_tokens, output_tokens, total_tokens, cost_micro_usd FROM usage_records WHERE request_id = $1"
	if driver == "sqlite" {
		q = strings.Replace(q, "$1", "?", 1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := queryRows(db, q, requestID)
		if err == nil && len(rows) > 0 {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ledger row for request %s after 30s (last error: %v)", requestID, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func queryRows(db *sql.DB, q, requestID string) ([]ledgerRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q, requestID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.Sub, &r.ModelID, &r.Status, &r.InputTokens, &r.OutputTokens, &r.TotalTokens, &r.CostMicroUSD); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// countLedgerRows counts every row in the ledger.
func countLedgerRows(t testing.TB, driver, dsn string) int {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM usage_records").Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}

// testLogger sends warnings and errors to the test log, so a failing test
// shows what the services said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("must: %v", err))
	}
	return v
}
