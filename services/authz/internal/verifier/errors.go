package verifier

import (
	"errors"
	"fmt"
)

// Sentinel errors, each wrapped in a *[Refusal] carrying the specific reason.
var (
	ErrNoCredential    = errors.New("verifier: no credential given")
	ErrMalformed       = errors.New("verifier: token is malformed")
	ErrAlgorithm       = errors.New("verifier: token algorithm is not allowed")
	ErrSignature       = errors.New("verifier: token signature is invalid")
	ErrUnknownKey      = errors.New("verifier: token key id is not known")
	ErrIssuer          = errors.New("verifier: token issuer is not trusted")
	ErrAudience        = errors.New("verifier: token audience is not accepted")
	ErrExpired         = errors.New("verifier: token expired")
	ErrNoExpiry        = errors.New("verifier: token has no expiry")
	ErrNotYetValid     = errors.New("verifier: token not valid yet")
	ErrNoSubject       = errors.New("verifier: token has no sub")
	ErrTokenUse        = errors.New("verifier: token_use is not accepted")
	ErrRevoked         = errors.New("verifier: credential revoked")
	ErrKeyFetch        = errors.New("verifier: issuer keys could not be fetched")
	ErrAPIKeysDisabled = errors.New("verifier: API keys are not enabled")
	ErrInvalidConfig   = errors.New("verifier: invalid configuration")
)

// Refusal is a credential that was refused. Reason is specific and safe to
// pass to the caller; Err is one of the sentinels, for [errors.Is].
type Refusal struct {
	Err    error
	Reason string
}

// Error returns the reason.
func (r *Refusal) Error() string { return r.Reason }

// Unwrap returns the sentinel.
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(sentinel error, format string, args ...any) *Refusal {
	return &Refusal{Err: sentinel, Reason: fmt.Sprintf(format, args...)}
}
