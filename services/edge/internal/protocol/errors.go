package protocol

// Error types sent to clients in {"errorType", "message"} objects. The
// Amplify client treats UnauthorizedException and BadRequestException as
// final (it does not retry); anything else on connect is retried.
const (
	ErrTypeUnauthorized     = "UnauthorizedException"
	ErrTypeBadRequest       = "BadRequestException"
	ErrTypeUnsupported      = "UnsupportedOperation"
	ErrTypeMaxSubscriptions = "MaxSubscriptionsReachedError"
	ErrTypeUnavailable      = "ServiceUnavailableException"
	ErrTypeInternal         = "InternalFailureException"
	// ErrTypeLimitExceeded reports a protection limit: publish rate,
	// connections per identity, the size of a delivered event.
	ErrTypeLimitExceeded = "LimitExceededException"
)

// Error is one entry of a frame's "errors" array. It is also a Go error so
// the edge can return it through ordinary error paths.
type Error struct {
	ErrorType string `json:"errorType"`
	Message   string `json:"message"`
	// ErrorCode is an HTTP-like status. It is sent only on connection_error
	// (where the Amplify client reads it) and used for POST /event statuses.
	ErrorCode int `json:"errorCode,omitempty"`
}

func (e *Error) Error() string { return e.ErrorType + ": " + e.Message }

// Status returns the HTTP status for the error type.
func (e *Error) Status() int {
	switch e.ErrorType {
	case ErrTypeUnauthorized:
		return 401
	case ErrTypeBadRequest, ErrTypeUnsupported, ErrTypeMaxSubscriptions:
		return 400
	case ErrTypeUnavailable:
		return 503
	case ErrTypeLimitExceeded:
		return 429
	default:
		return 500
	}
}

// Unauthorized returns an [ErrTypeUnauthorized] error.
func Unauthorized(msg string) *Error { return &Error{ErrorType: ErrTypeUnauthorized, Message: msg} }

// BadRequest returns an [ErrTypeBadRequest] error.
func BadRequest(msg string) *Error { return &Error{ErrorType: ErrTypeBadRequest, Message: msg} }

// Unavailable returns an [ErrTypeUnavailable] error.
func Unavailable(msg string) *Error { return &Error{ErrorType: ErrTypeUnavailable, Message: msg} }

// LimitExceeded returns an [ErrTypeLimitExceeded] error.
func LimitExceeded(msg string) *Error { return &Error{ErrorType: ErrTypeLimitExceeded, Message: msg} }

// Internal returns an [ErrTypeInternal] error.
func Internal(msg string) *Error { return &Error{ErrorType: ErrTypeInternal, Message: msg} }
