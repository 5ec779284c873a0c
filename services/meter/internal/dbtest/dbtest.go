// Package dbtest gives meter's tests their databases: a SQLite file in
// t.TempDir(), or a fresh schema in the local Postgres that is dropped when
// the test ends.
//
// Postgres is found at the URL in [EnvURL] (default [DefaultURL]). Where
// it is unreachable the test is skipped with a clear message, except under
// CI=true, where it fails.
package dbtest

import (
	"context"
	"crypto/rand"
	stdsql "database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// EnvURL names the environment variable holding the test Postgres URL.
const EnvURL = "GATEHOUSE_TEST_DATABASE_URL"

// DefaultURL is the test Postgres used when [EnvURL] is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// connectTimeout bounds reaching the test Postgres.
const connectTimeout = 5 * time.Second

// Backend is one kind of ledger database under test.
type Backend struct {
	// Name is "sqlite" or "postgres", used as the subtest name.
	Name string
	// Open prepares a fresh, empty database for t and returns the
	// DatabaseURL and SQLitePath to configure meter with.
	Open func(t testing.TB) (databaseURL, sqlitePath string)
}

// Backends lists SQLite and Postgres, so one test table runs on both.
var Backends = []Backend{
	{Name: "sqlite", Open: func(t testing.TB) (string, string) { return "", SQLitePath(t) }},
	{Name: "postgres", Open: func(t testing.TB) (string, string) { return PostgresURL(t), "" }},
}

// SQLitePath returns a ledger file path in a fresh temporary directory.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "ledger.db")
}

// BaseURL returns the configured test Postgres URL.
func BaseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// PostgresURL creates the schema gh_t_<random> in the test Postgres and
// returns a URL whose search_path selects it. The schema is dropped
// (CASCADE) when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := BaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dbtest: Postgres at %s is unreachable (set %s): %v", redact(base), EnvURL, err)
		}
		t.Skipf("dbtest: skipping, Postgres at %s is unreachable (set %s; CI=true makes this fail): %v", redact(base), EnvURL, err)
	}
	defer conn.Close(context.Background())
	schema := "gh_t_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() { Exec(t, base, "", "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: parse %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs one statement on the Postgres database at databaseURL, or on
// the SQLite file at sqlitePath when databaseURL is empty, failing t on error.
func Exec(t testing.TB, databaseURL, sqlitePath, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if databaseURL == "" {
		db, err := stdsql.Open("sqlite", sqlitePath+"?_busy_timeout=5000")
		if err != nil {
			t.Fatalf("dbtest: open sqlite: %v", err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, sql); err != nil {
			t.Fatalf("dbtest: %s: %v", sql, err)
		}
		return
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("dbtest: %s: %v", sql, err)
	}
}

// QueryInt runs a query returning one integer on the Postgres database at
// databaseURL, or on the SQLite file at sqlitePath when databaseURL is
// empty, failing t on error.
func QueryInt(t testing.TB, databaseURL, sqlitePath, sql string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	var n int64
	if databaseURL == "" {
		db, err := stdsql.Open("sqlite", sqlitePath+"?_busy_timeout=5000&_query_only=1")
		if err != nil {
			t.Fatalf("dbtest: open sqlite: %v", err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("dbtest: %s: %v", sql, err)
		}
		return n
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("dbtest: %s: %v", sql, err)
	}
	return n
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
