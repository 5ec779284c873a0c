package cache

import "errors"

// Sentinel errors. Validation failures wrap [ErrInvalidConfig]; request
// failures wrap [ErrBadKey] or [ErrEntryTooLarge].
var (
	// ErrInvalidConfig is returned by [Config.Validate] and [New].
	ErrInvalidConfig = errors.New("cache: invalid config")
	// ErrNilConn is returned by [New] without a NATS connection.
	ErrNilConn = errors.New("cache: nats connection is nil")
	// ErrBadKey means a key is not 64 lowercase hex characters.
	ErrBadKey = errors.New("cache: key must be 64 lowercase hex characters")
	// ErrEntryTooLarge means an encoded entry exceeds [Config.MaxEntryBytes].
	ErrEntryTooLarge = errors.New("cache: entry too large")
)
