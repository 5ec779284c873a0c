package channel

import (
	"strings"
)

// Limits of the AppSync Events channel grammar.
const (
	// MaxSegments is the largest number of segments in a channel.
	MaxSegments = 5
	// MaxSegmentLen is the longest segment, in bytes.
	MaxSegmentLen = 50
	// maxInputLen bounds the work done on hostile input before rejecting it.
	maxInputLen = MaxSegments*(MaxSegmentLen+1) + 3
)

// Channel is a parsed, validated channel path. The zero value is not valid;
// obtain one from [Parse], [ParsePattern] or [FromSubject]. A Channel is
// immutable and safe for concurrent use.
type Channel struct {
	segs     []string
	wildcard bool
}

// Parse validates a concrete channel path such as "/Inbound-Messages/alice".
// A trailing "/*" is rejected; use [ParsePattern] for subscriptions.
func Parse(s string) (Channel, error) {
	c, err := parse(s)
	if err != nil {
		return Channel{}, err
	}
	if c.wildcard {
		return Channel{}, &Error{Channel: display(s), Err: ErrWildcard, Detail: "a wildcard is only allowed when subscribing"}
	}
	return c, nil
}

// ParsePattern validates a subscription path: a concrete channel, or one
// ending in "/*" which matches that prefix and every channel below it.
func ParsePattern(s string) (Channel, error) {
	return parse(s)
}

func parse(s string) (Channel, error) {
	in := s
	if len(s) > maxInputLen {
		return Channel{}, &Error{Channel: display(in), Err: ErrTooManySegments, Detail: "channel path is too long"}
	}
	s = strings.TrimPrefix(s, "/")
	wildcard := false
	if s == "*" {
		return Channel{}, &Error{Channel: display(in), Err: ErrWildcard, Detail: "a wildcard needs at least one segment before it (for example /namespace/*)"}
	}
	if strings.HasSuffix(s, "/*") {
		wildcard = true
		s = strings.TrimSuffix(s, "/*")
	} else {
		s = strings.TrimSuffix(s, "/")
	}
	if s == "" {
		return Channel{}, &Error{Channel: display(in), Err: ErrEmpty, Detail: "a channel needs at least one segment, like /namespace/name"}
	}
	n := strings.Count(s, "/") + 1
	if n > MaxSegments || (wildcard && n > MaxSegments-1) {
		return Channel{}, &Error{Channel: display(in), Err: ErrTooManySegments, Detail: "at most 5 segments are allowed (a trailing /* counts as one)"}
	}
	segs := make([]string, 0, n)
	for i := 1; ; i++ {
		seg, rest, more := strings.Cut(s, "/")
		if err := validSegment(seg); err != nil {
			err.Channel, err.Segment = display(in), i
			return Channel{}, err
		}
		segs = append(segs, seg)
		if !more {
			break
		}
		s = rest
	}
	return Channel{segs: segs, wildcard: wildcard}, nil
}

func validSegment(seg string) *Error {
	if seg == "" {
		return &Error{Err: ErrEmptySegment, Detail: "empty segment (two slashes in a row?)"}
	}
	if len(seg) > MaxSegmentLen {
		return &Error{Err: ErrSegmentTooLong, Detail: "longer than 50 characters"}
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(seg)-1 {
				return &Error{Err: ErrSegmentEdge, Detail: "must start and end with a letter or digit"}
			}
		case c == '*':
			return &Error{Err: ErrWildcard, Detail: "'*' is only allowed as the whole last segment"}
		default:
			return &Error{Err: ErrInvalidCharacter, Detail: "only letters, digits and '-' are allowed"}
		}
	}
	return nil
}

// ValidSegment reports whether s is a valid single channel segment, for
// example a caller's channel id.
func ValidSegment(s string) bool { return validSegment(s) == nil }

func display(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// New builds a concrete channel from segments, validating each.
func New(segs ...string) (Channel, error) {
	return Parse("/" + strings.Join(segs, "/"))
}

// Segments returns a copy of the channel's segments (without the wildcard).
func (c Channel) Segments() []string { return append([]string(nil), c.segs...) }

// Segment returns the i-th (0-based) segment, or "" when out of range.
func (c Channel) Segment(i int) string {
	if i < 0 || i >= len(c.segs) {
		return ""
	}
	return c.segs[i]
}

// Len returns the number of segments, not counting a trailing wildcard.
func (c Channel) Len() int { return len(c.segs) }

// Namespace returns the first segment.
func (c Channel) Namespace() string { return c.Segment(0) }

// IsWildcard reports whether the channel ends in "/*".
func (c Channel) IsWildcard() bool { return c.wildcard }

// IsZero reports whether c is the zero (invalid) Channel.
func (c Channel) IsZero() bool { return len(c.segs) == 0 }

// String returns the canonical path: a leading "/", no trailing "/", and
// "/*" for a wildcard.
func (c Channel) String() string {
	var b strings.Builder
	for _, s := range c.segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if c.wildcard {
		b.WriteString("/*")
	}
	return b.String()
}

// Subject returns the NATS subject for the channel under prefix:
// "/Outbound-Messages/abc" becomes "<prefix>.ch.Outbound-Messages.abc", and a
// wildcard becomes "<prefix>.ch.Outbound-Messages.>" (a wildcard
// "/ns/*" matches "/ns" itself too; subscribers handle that with a second
// subscription, see [Channel.Subjects]).
func (c Channel) Subject(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 4 + 52*len(c.segs))
	b.WriteString(prefix)
	b.WriteString(".ch")
	for _, s := range c.segs {
		b.WriteByte('.')
		b.WriteString(s)
	}
	if c.wildcard {
		b.WriteString(".>")
	}
	return b.String()
}

// Subjects returns every NATS subject a subscription to c must cover: the
// single subject of a concrete channel, or for "/a/*" both "<p>.ch.a" and
// "<p>.ch.a.>".
func (c Channel) Subjects(prefix string) []string {
	if !c.wildcard {
		return []string{c.Subject(prefix)}
	}
	exact := Channel{segs: c.segs}
	return []string{exact.Subject(prefix), c.Subject(prefix)}
}

// FromSubject maps a NATS channel subject back to its channel. It rejects
// subjects outside "<prefix>.ch." and any whose tokens violate the grammar.
func FromSubject(prefix, subject string) (Channel, error) {
	p := prefix + ".ch."
	if !strings.HasPrefix(subject, p) {
		return Channel{}, &Error{Channel: display(subject), Err: ErrNotChannel, Detail: "subject does not start with " + p}
	}
	rest := subject[len(p):]
	if strings.ContainsAny(rest, "/") {
		return Channel{}, &Error{Channel: display(subject), Err: ErrInvalidCharacter, Detail: "'/' in subject"}
	}
	return Parse("/" + strings.ReplaceAll(rest, ".", "/"))
}

// Matches reports whether the concrete channel ch is covered by the pattern
// c: equal segments, or for a wildcard pattern, ch starts with its segments.
func (c Channel) Matches(ch Channel) bool {
	if ch.wildcard || len(ch.segs) == 0 {
		return false
	}
	if c.wildcard {
		if len(ch.segs) < len(c.segs) {
			return false
		}
	} else if len(ch.segs) != len(c.segs) {
		return false
	}
	for i, s := range c.segs {
		if ch.segs[i] != s {
			return false
		}
	}
	return true
}

// Covers reports whether every channel matched by other is also matched by
// the pattern c; a grant on c then authorizes other. Used so that a wildcard
// never widens a grant.
func (c Channel) Covers(other Channel) bool {
	if len(c.segs) == 0 || len(other.segs) == 0 {
		return false
	}
	if !c.wildcard {
		return !other.wildcard && c.Matches(other)
	}
	if len(other.segs) < len(c.segs) {
		return false
	}
	for i, s := range c.segs {
		if other.segs[i] != s {
			return false
		}
	}
	return true
}
