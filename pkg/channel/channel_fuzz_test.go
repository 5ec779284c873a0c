package channel

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzParse proves that whatever a client sends, an accepted channel maps to
// a subject whose tokens are all grammar-clean: no '.', '*', '>' injection
// and no whitespace, and that parsing is stable under a round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/*", "a.b", "/a/>", "/a b", "/Inbound-Messages/alice", "/a/b/c/d/*", "//", "/-", "/a\x00b", "/a/*/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, pattern := range []bool{false, true} {
			var c Channel
			var err error
			if pattern {
				c, err = ParsePattern(s)
			} else {
				c, err = Parse(s)
			}
			if err != nil {
				continue
			}
			subj := c.Subject("gh")
			if strings.IndexFunc(subj, unicode.IsSpace) >= 0 {
				t.Fatalf("whitespace in subject %q from %q", subj, s)
			}
			toks := strings.Split(subj, ".")
			if len(toks) < 3 || toks[0] != "gh" || toks[1] != "ch" {
				t.Fatalf("bad subject %q from %q", subj, s)
			}
			for i, tok := range toks[2:] {
				last := i == len(toks)-3
				if tok == ">" && pattern && last && c.IsWildcard() {
					continue
				}
				if tok == "" || strings.ContainsAny(tok, "*>") || !ValidSegment(tok) {
					t.Fatalf("unsafe token %q in %q from %q", tok, subj, s)
				}
			}
			if len(c.Segments()) > MaxSegments {
				t.Fatalf("too many segments from %q", s)
			}
			again, err := ParsePattern(c.String())
			if err != nil || again.String() != c.String() {
				t.Fatalf("round trip of %q: %q %v", s, again.String(), err)
			}
		}
	})
}
