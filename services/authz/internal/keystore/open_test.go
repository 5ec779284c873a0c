package keystore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/sqlitewal"
)

// TestConcurrentSQLiteOpen opens one new SQLite file from several stores
// at once, as authz and meter replicas started together do: each first
// connection switches the file to WAL, which SQLite may refuse with
// SQLITE_BUSY at once, without waiting out busy_timeout; every Open must
// still succeed.
func TestConcurrentSQLiteOpen(t *testing.T) {
	t.Parallel()
	for round := range 10 {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for range 4 {
			// The meter's writer opens the same file its own way (and
			// waits out a busy file with sqlitewal.Ping too).
			wg.Go(func() {
				db, err := sql.Open("sqlite", path+"?_busy_timeout=5000&_foreign_keys=1&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
				if err == nil {
					if err = sqlitewal.Ping(context.Background(), db, SQLiteBusyTimeout); err == nil {
						_, err = db.Exec("CREATE TABLE IF NOT EXISTS meter_side (x INTEGER)")
					}
					err = errors.Join(err, db.Close())
				}
				mu.Lock()
				defer mu.Unlock()
				errs = append(errs, err)
			})
		}
		for range 4 {
			wg.Go(func() {
				s, err := Open(context.Background(), "", path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				errs = append(errs, s.Close())
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
