package channel

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped in *[Error]) by [Parse] and [ParsePattern].
var (
	ErrEmpty            = errors.New("channel: empty channel")
	ErrTooManySegments  = errors.New("channel: too many segments")
	ErrEmptySegment     = errors.New("channel: empty segment")
	ErrSegmentTooLong   = errors.New("channel: segment too long")
	ErrInvalidCharacter = errors.New("channel: invalid character")
	ErrSegmentEdge      = errors.New("channel: segment must start and end with a letter or digit")
	ErrWildcard         = errors.New("channel: wildcard not allowed here")
	ErrNotChannel       = errors.New("channel: subject is not a channel subject")
)

// Error describes why a channel path was rejected. It unwraps to one of the
// sentinel errors so callers can match with [errors.Is].
type Error struct {
	Channel string // the input, truncated for display
	Segment int    // 1-based segment index, 0 when not segment specific
	Err     error  // one of the sentinels
	Detail  string // human readable detail
}

func (e *Error) Error() string {
	if e.Segment > 0 {
		return fmt.Sprintf("invalid channel %q: segment %d: %s", e.Channel, e.Segment, e.Detail)
	}
	return fmt.Sprintf("invalid channel %q: %s", e.Channel, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }
