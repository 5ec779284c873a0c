// Package jwk encodes public keys as JSON Web Keys (RFC 7517) and computes
// their RFC 7638 thumbprints, which Gatehouse uses as key ids.
package jwk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnsupportedKey is returned for keys this package cannot encode.
var ErrUnsupportedKey = errors.New("jwk: unsupported key")

// Key is one JSON Web Key of an elliptic-curve public key.
type Key struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// Set is a JSON Web Key Set.
type Set struct {
	Keys []Key `json:"keys"`
}

// FromECDSA encodes a P-256 public key. Kid is set to its RFC 7638
// thumbprint, Alg to ES256 and Use to "sig".
func FromECDSA(pub *ecdsa.PublicKey) (Key, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return Key{}, fmt.Errorf("%w: only P-256 ECDSA keys are supported", ErrUnsupportedKey)
	}
	raw, err := pub.Bytes() // 0x04 || X || Y, each coordinate 32 bytes
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	const size = 32
	k := Key{
		Kty: "EC",
		Crv: "P-256",
		X:   base64.RawURLEncoding.EncodeToString(raw[1 : 1+size]),
		Y:   base64.RawURLEncoding.EncodeToString(raw[1+size:]),
		Alg: "ES256",
		Use: "sig",
	}
	k.Kid = k.Thumbprint()
	return k, nil
}

// Thumbprint returns the RFC 7638 thumbprint of k: base64url (unpadded)
// SHA-256 of the required members in lexicographic order, no whitespace.
func (k Key) Thumbprint() string {
	// The members are base64url and fixed names, so no JSON escaping is needed.
	canonical := `{"crv":"` + k.Crv + `","kty":"` + k.Kty + `","x":"` + k.X + `","y":"` + k.Y + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Marshal encodes keys as a JSON Web Key Set.
func Marshal(keys ...Key) ([]byte, error) {
	if keys == nil {
		keys = []Key{}
	}
	b, err := json.Marshal(Set{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("jwk: encode set: %w", err)
	}
	return b, nil
}
