package keystore

import "errors"

// Sentinel errors returned by this package. Match them with [errors.Is].
var (
	// ErrNotFound is a key id that is not stored.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrMalformedKey is a string that is not a Gatehouse API key.
	ErrMalformedKey = errors.New("keystore: not a Gatehouse API key")
	// ErrUnsupportedURL is a database URL this package cannot open.
	ErrUnsupportedURL = errors.New("keystore: unsupported database URL")
	// ErrBadMigration is a migration file that cannot be applied.
	ErrBadMigration = errors.New("keystore: bad migration")
)
