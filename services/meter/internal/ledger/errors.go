package ledger

import "errors"

// Sentinel errors of the ledger.
var (
	// ErrUnsupportedURL is returned by [Open] for a database URL that is
	// neither empty (SQLite) nor postgres:// or postgresql://.
	ErrUnsupportedURL = errors.New("ledger: unsupported database url")
	// ErrNoSQLitePath is returned by [Open] when neither a database URL
	// nor a SQLite path is given.
	ErrNoSQLitePath = errors.New("ledger: sqlite path is required when no database url is set")
	// ErrBadMigration is returned when an embedded migration file is
	// misnamed or versions repeat.
	ErrBadMigration = errors.New("ledger: bad migration")
	// ErrBadQuery is returned by Usage for an invalid [Query].
	ErrBadQuery = errors.New("ledger: bad usage query")
)
