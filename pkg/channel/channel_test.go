package channel

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 50)
	tests := []struct {
		in      string
		pattern bool
		want    string
		subject string
		err     error
	}{
		{in: "/Inbound-Messages/alice", want: "/Inbound-Messages/alice", subject: "gh.ch.Inbound-Messages.alice"},
		{in: "Inbound-Messages/alice", want: "/Inbound-Messages/alice", subject: "gh.ch.Inbound-Messages.alice"},
		{in: "/default/", want: "/default", subject: "gh.ch.default"},
		{in: "/a/b/c/d/e", want: "/a/b/c/d/e", subject: "gh.ch.a.b.c.d.e"},
		{in: "/" + long, want: "/" + long, subject: "gh.ch." + long},
		{in: "/a-b/c9", want: "/a-b/c9", subject: "gh.ch.a-b.c9"},
		{in: "/a/*", pattern: true, want: "/a/*", subject: "gh.ch.a.>"},
		{in: "/a/b/c/d/*", pattern: true, want: "/a/b/c/d/*", subject: "gh.ch.a.b.c.d.>"},
		{in: "/a/*", err: ErrWildcard},
		{in: "/*", pattern: true, err: ErrWildcard},
		{in: "*", pattern: true, err: ErrWildcard},
		{in: "/a/b/c/d/e/*", pattern: true, err: ErrTooManySegments},
		{in: "/a/b/c/d/e/f", err: ErrTooManySegments},
		{in: "", err: ErrEmpty},
		{in: "/", err: ErrEmpty},
		{in: "//", err: ErrEmpty},
		{in: "/a//b", err: ErrEmptySegment},
		{in: "/" + long + "a", err: ErrSegmentTooLong},
		{in: "/-a", err: ErrSegmentEdge},
		{in: "/a-", err: ErrSegmentEdge},
		{in: "/a.b", err: ErrInvalidCharacter},
		{in: "/a/>", err: ErrInvalidCharacter},
		{in: "/a/b*", pattern: true, err: ErrWildcard},
		{in: "/a/*/b", pattern: true, err: ErrWildcard},
		{in: "/a b", err: ErrInvalidCharacter},
		{in: "/a\tb", err: ErrInvalidCharacter},
		{in: "/a\nb", err: ErrInvalidCharacter},
		{in: "/a_b", err: ErrInvalidCharacter},
		{in: "/é", err: ErrInvalidCharacter},
		{in: strings.Repeat("/a", 300), err: ErrTooManySegments},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			parse := Parse
			if tt.pattern {
				parse = ParsePattern
			}
			c, err := parse(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				var ce *Error
				if !errors.As(err, &ce) || ce.Error() == "" {
					t.Fatalf("error %v is not a *channel.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := c.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := c.Subject("gh"); got != tt.subject {
				t.Errorf("Subject() = %q, want %q", got, tt.subject)
			}
			if !tt.pattern {
				back, err := FromSubject("gh", c.Subject("gh"))
				if err != nil || back.String() != c.String() {
					t.Errorf("FromSubject round trip = %v, %v", back, err)
				}
			}
		})
	}
}

func TestMatchesAndCovers(t *testing.T) {
	t.Parallel()
	mustP := func(s string) Channel {
		c, err := ParsePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		pattern, ch    string
		matches, cover bool
	}{
		{"/a/b", "/a/b", true, true},
		{"/a/b", "/a/c", false, false},
		{"/a/*", "/a", true, true},
		{"/a/*", "/a/b", true, true},
		{"/a/*", "/a/b/c", true, true},
		{"/a/*", "/b/a", false, false},
		{"/a/b", "/a/b/c", false, false},
		{"/Outbound-Messages/alice", "/Outbound-Messages/*", false, false},
		{"/a/*", "/a/b/*", false, true},
		{"/a/b/*", "/a/*", false, false},
	}
	for _, tt := range tests {
		p, c := mustP(tt.pattern), mustP(tt.ch)
		if got := p.Matches(c); got != tt.matches {
			t.Errorf("%s.Matches(%s) = %v, want %v", tt.pattern, tt.ch, got, tt.matches)
		}
		if got := p.Covers(c); got != tt.cover {
			t.Errorf("%s.Covers(%s) = %v, want %v", tt.pattern, tt.ch, got, tt.cover)
		}
	}
}

func TestSubjectsOfWildcard(t *testing.T) {
	t.Parallel()
	c, err := ParsePattern("/ns/x/*")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Subjects("gh")
	if len(got) != 2 || got[0] != "gh.ch.ns.x" || got[1] != "gh.ch.ns.x.>" {
		t.Fatalf("Subjects = %v", got)
	}
}

func TestFromSubjectRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"gh.ch", "gh.chx.a", "other.ch.a", "gh.ch.a..b", "gh.ch.a.*", "gh.ch.a.>", "gh.ch.a/b", "gh.ch.-a"} {
		if _, err := FromSubject("gh", s); err == nil {
			t.Errorf("FromSubject(%q) accepted", s)
		}
	}
}

func TestNewAndValidSegment(t *testing.T) {
	t.Parallel()
	c, err := New("Outbound-Messages", "alice")
	if err != nil || c.String() != "/Outbound-Messages/alice" || c.Namespace() != "Outbound-Messages" || c.Segment(1) != "alice" || c.Segment(2) != "" || c.Len() != 2 {
		t.Fatalf("New = %v %v", c, err)
	}
	if _, err := New("a", "b.c"); err == nil {
		t.Fatal("New accepted a dotted segment")
	}
	if !ValidSegment("u-abc") || ValidSegment("a.b") || ValidSegment("") {
		t.Fatal("ValidSegment wrong")
	}
}
