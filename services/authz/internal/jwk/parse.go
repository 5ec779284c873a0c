package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// Limits of a parsed key set.
const (
	// MaxSetKeys is the most keys a parsed set may hold; real issuers
	// publish two or three.
	MaxSetKeys = 100
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// rawKey is a JSON Web Key of any supported type.
type rawKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// ParseSet decodes a JSON Web Key Set into public keys by key id. RSA (at
// least [MinRSABits]), EC (P-256, P-384, P-521) and OKP Ed25519 signing keys
// are kept; keys without a kid, encryption keys ("use": "enc") and keys of
// other types are skipped. A malformed key of a supported type is an error.
func ParseSet(data []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []rawKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: key set is not JSON: %v", ErrUnsupportedKey, err)
	}
	if len(set.Keys) > MaxSetKeys {
		return nil, fmt.Errorf("%w: key set holds %d keys, at most %d", ErrUnsupportedKey, len(set.Keys), MaxSetKeys)
	}
	out := make(map[string]crypto.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kid == "" || k.Use == "enc" {
			continue
		}
		var (
			pub crypto.PublicKey
			err error
		)
		switch k.Kty {
		case "RSA":
			pub, err = k.rsa()
		case "EC":
			pub, err = k.ec()
		case "OKP":
			pub, err = k.okp()
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrUnsupportedKey, k.Kid, err)
		}
		out[k.Kid] = pub
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func (k rawKey) rsa() (crypto.PublicKey, error) {
	n, err := b64(k.N)
	if err != nil || len(n) == 0 {
		return nil, fmt.Errorf("bad modulus n")
	}
	e, err := b64(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("bad exponent e")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits, at least %d required", pub.N.BitLen(), MinRSABits)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("bad exponent %d", exp)
	}
	return pub, nil
}

func (k rawKey) ec() (crypto.PublicKey, error) {
	var curve elliptic.Curve
	switch k.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported curve %q", k.Crv)
	}
	x, err1 := b64(k.X)
	y, err2 := b64(k.Y)
	size := (curve.Params().BitSize + 7) / 8
	if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
		return nil, fmt.Errorf("bad coordinates for %s", k.Crv)
	}
	raw := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("point is not on %s: %v", k.Crv, err)
	}
	return pub, nil
}

func (k rawKey) okp() (crypto.PublicKey, error) {
	if k.Crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP curve %q", k.Crv)
	}
	x, err := b64(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("bad Ed25519 key")
	}
	return ed25519.PublicKey(x), nil
}
