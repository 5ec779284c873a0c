package sqlitewal_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/sqlitewal"
)

// busyError is a driver error with SQLite's result code, as
// modernc.org/sqlite reports it.
type busyError struct{ code int }

func (e busyError) Error() string { return "database is locked" }
func (e busyError) Code() int     { return e.code }

// flakyDriver fails its first fails connections with err.
type flakyDriver struct {
	fails atomic.Int32
	err   error
}

func (d *flakyDriver) Open(string) (driver.Conn, error) {
	if d.fails.Add(-1) >= 0 {
		return nil, d.err
	}
	return conn{}, nil
}

type conn struct{}

func (conn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("unused") }
func (conn) Close() error                        { return nil }
func (conn) Begin() (driver.Tx, error)           { return nil, errors.New("unused") }

var registered atomic.Int32

// open registers d under a fresh name and opens it.
func open(t *testing.T, d *flakyDriver) *sql.DB {
	t.Helper()
	name := "flaky" + string(rune('a'+registered.Add(1)))
	sql.Register(name, d)
	db, err := sql.Open(name, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPingRetriesBusy: a database busy for its first three connections
// opens; one busy for longer than the wait, or failing otherwise, does not.
func TestPingRetriesBusy(t *testing.T) {
	t.Parallel()
	d := &flakyDriver{err: busyError{code: 5}}
	d.fails.Store(3)
	if err := sqlitewal.Ping(context.Background(), open(t, d), time.Second); err != nil {
		t.Fatalf("busy three times: %v", err)
	}

	d = &flakyDriver{err: busyError{code: 5 | 2<<8}} // SQLITE_BUSY_SNAPSHOT
	d.fails.Store(1 << 30)
	if err := sqlitewal.Ping(context.Background(), open(t, d), 50*time.Millisecond); !sqlitewal.Busy(err) {
		t.Fatalf("busy for good: %v, want the busy error", err)
	}
	if tries := 1<<30 - d.fails.Load(); tries < 2 {
		t.Fatalf("gave up after %d attempt, want retries", tries)
	}

	d = &flakyDriver{err: busyError{code: 14}} // SQLITE_CANTOPEN
	d.fails.Store(1 << 30)
	if err := sqlitewal.Ping(context.Background(), open(t, d), time.Minute); err == nil || sqlitewal.Busy(err) || d.fails.Load() != 1<<30-1 {
		t.Fatalf("another error: %v after %d attempts, want it at once", err, 1<<30-d.fails.Load())
	}
}
