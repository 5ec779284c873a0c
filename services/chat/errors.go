package chat

import "errors"

// Sentinel errors.
var (
	// ErrInvalidConfig is wrapped by every [Config.Validate] failure.
	ErrInvalidConfig = errors.New("chat: invalid config")
	// ErrNilConn is returned by [New] without a NATS connection.
	ErrNilConn = errors.New("chat: nats connection is nil")
	// ErrAlreadyRunning is returned by a second call to [Service.Run].
	ErrAlreadyRunning = errors.New("chat: service is already running")
)
