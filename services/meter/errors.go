package meter

import "errors"

// Sentinel errors of the meter service.
var (
	// ErrInvalidConfig wraps every [Config.Validate] failure.
	ErrInvalidConfig = errors.New("meter: invalid config")
	// ErrAlreadyRunning is returned by [Service.Run] when called twice.
	ErrAlreadyRunning = errors.New("meter: service already running")
	// ErrBadRequest wraps every request validation failure; it is
	// answered with code 400 and a description naming the field.
	ErrBadRequest = errors.New("meter: bad request")
	// ErrForbidden is answered with code 403: a caller asked for usage
	// that is not theirs without being an admin.
	ErrForbidden = errors.New("meter: forbidden")
)
