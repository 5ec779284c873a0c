// Package sqlitewal opens SQLite databases in WAL mode that several
// processes share (`gatehouse authz` and `gatehouse meter` share one file
// when no Postgres is configured).
package sqlitewal

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Retry is the pause between attempts to open a database that another
// connection is converting to WAL.
const Retry = 10 * time.Millisecond

// sqliteBusy is SQLite's SQLITE_BUSY primary result code.
const sqliteBusy = 5

// coded is the error of a SQLite driver that reports its result code
// (modernc.org/sqlite's *sqlite.Error).
type coded interface {
	error
	Code() int
}

// Ping opens db's first connection, which runs the DSN's pragmas.
// Switching a new file to WAL needs an exclusive lock, and SQLite may then
// report SQLITE_BUSY at once, without waiting out busy_timeout, when
// another process does the same; so Ping retries a busy database for up
// to wait. Any other error, or ctx ending, returns at once.
func Ping(ctx context.Context, db *sql.DB, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := db.PingContext(ctx)
		if err == nil || !Busy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(Retry):
		}
	}
}

// Busy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func Busy(err error) bool {
	var c coded
	return errors.As(err, &c) && c.Code()&0xff == sqliteBusy
}
