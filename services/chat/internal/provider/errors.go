package provider

import (
	"errors"
	"fmt"
	"time"
)

// errTrailingJSON reports data after the JSON value of a tool schema,
// input or result.
var errTrailingJSON = errors.New("provider: data after the JSON value")

// errEmptyJSONKey reports an empty object key in a tool schema, input or
// result, which Bedrock's document encoder cannot write.
var errEmptyJSONKey = errors.New("provider: empty JSON object key")

// Kind classifies a provider failure so that chat can decide whether to
// retry, fall back, and which error type the client sees.
type Kind int

// Failure kinds.
const (
	// KindUpstream is any other upstream failure; not retried.
	KindUpstream Kind = iota
	// KindThrottled is throttling (HTTP 429, Bedrock ThrottlingException);
	// retried before the first token.
	KindThrottled
	// KindUnavailable is a 5xx, a model that is not ready, a broken
	// connection or a timeout; retried before the first token.
	KindUnavailable
	// KindRejected is a request the upstream refused as invalid (4xx other
	// than 429); not retried.
	KindRejected
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindThrottled:
		return "throttled"
	case KindUnavailable:
		return "unavailable"
	case KindRejected:
		return "rejected"
	}
	return "upstream"
}

// Error is a classified provider failure.
type Error struct {
	// Provider names the provider that failed.
	Provider string
	// Kind classifies the failure.
	Kind Kind
	// Status is the upstream HTTP status, 0 when there was none (a
	// mid-stream exception or a transport failure).
	Status int
	// RetryAfter is the upstream's Retry-After hint, 0 when absent.
	RetryAfter time.Duration
	// Message is the upstream's description.
	Message string
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	s := e.Provider + ": " + e.Kind.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil && e.Message == "" {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is worth retrying (before any output was
// produced): throttling and unavailability.
func Retryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind == KindThrottled || pe.Kind == KindUnavailable
	}
	return false
}

// KindOf returns the kind of err, KindUpstream when it is not an [*Error].
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindUpstream
}

// statusKind classifies an HTTP status.
func statusKind(status int) Kind {
	switch {
	case status == 429:
		return KindThrottled
	case status == 408 || status >= 500:
		return KindUnavailable
	case status >= 400:
		return KindRejected
	}
	return KindUpstream
}
