package authz

import "errors"

// Sentinel errors returned by this package. Match them with [errors.Is].
var (
	// ErrInvalidConfig wraps every [Config.Validate] failure.
	ErrInvalidConfig = errors.New("authz: invalid config")
	// ErrInvalidPolicy wraps every [Policy.Validate] failure.
	ErrInvalidPolicy = errors.New("authz: invalid policy")
	// ErrDevIssuerKey wraps failures to load or create the dev issuer's key.
	ErrDevIssuerKey = errors.New("authz: dev issuer key")
	// ErrInvalidClaims is returned by [DevIssuer.Mint] for claims it will not sign.
	ErrInvalidClaims = errors.New("authz: invalid dev token claims")
	// ErrAlreadyRunning is returned by a second call of [Service.Run].
	ErrAlreadyRunning = errors.New("authz: service already running")
	// errBadOp is a check request whose op is neither publish nor subscribe.
	errBadOp = errors.New("authz: op must be publish, subscribe or invoke")
)
