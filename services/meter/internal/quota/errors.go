package quota

import "errors"

// Sentinel errors of the quota package.
var (
	// ErrInvalidConfig wraps every [Config.Validate] failure.
	ErrInvalidConfig = errors.New("quota: invalid config")
	// ErrContention is returned when a subject's state could not be
	// updated within [MaxCASAttempts] compare-and-set attempts.
	ErrContention = errors.New("quota: too much contention on a subject")
	// ErrCorruptState is returned when a subject's stored state does not
	// decode; the key must be deleted to be rebuilt from the ledger.
	ErrCorruptState = errors.New("quota: corrupt subject state")
)
