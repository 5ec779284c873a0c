package keystore

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id, key, hash, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, Prefix) || len(key) != KeyLen || seen[key] || !ValidID(id) {
			t.Fatalf("bad key %q id %q", key, id)
		}
		seen[key] = true
		got, err := Parse(key)
		if err != nil || got != id {
			t.Fatalf("Parse(%q) = %q, %v; want %q", key, got, err, id)
		}
		if !Matches(key, hash) || Matches(key[:len(key)-1]+"x", hash) {
			t.Fatal("Matches disagrees with the hash")
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	_, good, _, _ := Generate()
	for _, k := range []string{"", "gh_", good[:len(good)-1], good + "a", "xx" + good[2:], strings.ToUpper(good),
		good[:len(Prefix)] + "x" + good[len(Prefix)+1:], strings.Replace(good, "_", "-", 2)} {
		if _, err := Parse(k); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Parse(%q) = %v, want ErrMalformedKey", k, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	_, good, _, _ := Generate()
	f.Add(good)
	f.Add("gh_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			return
		}
		if !ValidID(id) || !strings.Contains(s, id) {
			t.Fatalf("Parse(%q) accepted with id %q", s, id)
		}
	})
}
