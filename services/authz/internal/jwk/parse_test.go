package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey, err := FromECDSA(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []any{
		ecKey,
		map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(edPub)},
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
		map[string]string{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		map[string]string{"kty": "EC", "crv": "P-256", "x": ecKey.X, "y": ecKey.Y}, // no kid
	}}
	data, _ := json.Marshal(set)
	keys, err := ParseSet(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("kept %d keys, want the EC and Ed25519 signing keys: %v", len(keys), keys)
	}
	if got, ok := keys[ecKey.Kid].(*ecdsa.PublicKey); !ok || !got.Equal(&ec.PublicKey) {
		t.Fatalf("EC key = %#v", keys[ecKey.Kid])
	}
	if got, ok := keys["ed"].(ed25519.PublicKey); !ok || !got.Equal(edPub) {
		t.Fatalf("Ed25519 key = %#v", keys["ed"])
	}
}

func TestParseSetRejects(t *testing.T) {
	t.Parallel()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	b64 := base64.RawURLEncoding.EncodeToString
	many := `{"keys":[` + strings.TrimSuffix(strings.Repeat(`{"kty":"oct","kid":"x"},`, MaxSetKeys+1), ",") + `]}`
	for name, tc := range map[string]struct{ data, want string }{
		"not json":      {`nope`, "not JSON"},
		"too many keys": {many, "at most 100"},
		"small rsa": {`{"keys":[{"kty":"RSA","kid":"r","n":"` + b64(small.N.Bytes()) + `","e":"` + b64(big.NewInt(int64(small.E)).Bytes()) + `"}]}`,
			"at least 2048"},
		"off-curve point": {`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`, "not on P-256"},
		"unknown curve":   {`{"keys":[{"kty":"EC","crv":"P-192","kid":"e","x":"AA","y":"AA"}]}`, "unsupported curve"},
	} {
		_, err := ParseSet([]byte(tc.data))
		if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseSet = %v, want ErrUnsupportedKey containing %q", name, err, tc.want)
		}
	}
}
