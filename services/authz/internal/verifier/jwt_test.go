package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTrimBearer(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc":           "abc",
		"Bearer abc":    "abc",
		"bearer abc":    "abc",
		"BEARER  abc ":  "abc",
		" Bearer":       "",
		"Bearer ":       "",
		"Bearerabc":     "Bearerabc",
		"Basic abc":     "Basic abc",
		"":              "",
		"Bearer Bearer": "Bearer",
	} {
		if got := TrimBearer(in); got != want {
			t.Errorf("TrimBearer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewJWTRefusesUnsafeConfig(t *testing.T) {
	t.Parallel()
	keys := StaticKeys{}
	ok := []Issuer{{URL: "https://i", Keys: keys}}
	for name, cfg := range map[string]JWTConfig{
		"no issuers":      {Audience: "a"},
		"no audience":     {Issuers: ok},
		"negative skew":   {Issuers: ok, Audience: "a", ClockSkew: -time.Second},
		"hmac method":     {Issuers: ok, Audience: "a", Methods: []string{"ES256", "HS256"}},
		"none method":     {Issuers: ok, Audience: "a", Methods: []string{"none"}},
		"duplicate":       {Issuers: append(ok, ok...), Audience: "a"},
		"issuer w/o keys": {Issuers: []Issuer{{URL: "https://i"}}, Audience: "a"},
	} {
		if _, err := NewJWT(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: NewJWT = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// failingKeys is a key set whose look-up fails (a JWKS that cannot be
// fetched): that is a verifier failure, not a refusal.
type failingKeys struct{}

var errFetch = errors.New("jwks fetch failed")

func (failingKeys) Key(context.Context, string) (crypto.PublicKey, error) { return nil, errFetch }

func TestKeySetFailureIsNotARefusal(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, err := NewJWT(JWTConfig{Issuers: []Issuer{{URL: "https://i", Keys: failingKeys{}}}, Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://i", "sub": "x", "aud": "a", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k"
	s, _ := tok.SignedString(key)
	_, err = v.Verify(context.Background(), s)
	var r *Refusal
	if !errors.Is(err, errFetch) || errors.As(err, &r) {
		t.Fatalf("Verify = %v, want the key set's failure, not a refusal", err)
	}
}

// FuzzVerify checks that no input panics and every failure is a refusal
// with a reason.
func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, err := NewJWT(JWTConfig{Issuers: []Issuer{{URL: "https://i", Keys: StaticKeys{"k": &key.PublicKey}}}, Audience: "a"})
	if err != nil {
		f.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://i", "sub": "x", "aud": "a", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k"
	good, _ := tok.SignedString(key)
	for _, seed := range []string{good, "", "a.b.c", "Bearer " + good, good + "x", strings.Replace(good, ".", "..", 1),
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL2kifQ.AAAA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := v.Verify(context.Background(), s)
		if err == nil {
			if id.Sub == "" || id.ChannelID == "" {
				t.Fatalf("accepted %q without sub or channel id: %+v", s, id)
			}
			return
		}
		var r *Refusal
		if !errors.As(err, &r) || r.Reason == "" || r.Err == nil {
			t.Fatalf("Verify(%q) = %v, want a *Refusal", s, err)
		}
	})
}
