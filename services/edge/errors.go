package edge

import "errors"

// Configuration errors returned (wrapped) by [Config.Validate] and [New].
var (
	ErrConfig   = errors.New("edge: invalid configuration")
	ErrNilConn  = errors.New("edge: a NATS connection is required")
	ErrTLSSetup = errors.New("edge: TLS setup failed")
)

// Errors of the service lifecycle.
var (
	// ErrAlreadyRunning is returned by a second call to [Service.Run].
	ErrAlreadyRunning = errors.New("edge: Run called more than once")
)
