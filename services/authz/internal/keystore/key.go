package keystore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
)

// Key format: Prefix, the key id, "_", the secret. The id is IDBytes of
// randomness and the secret SecretBytes (256 bits), both lowercase base32
// without padding, so a key is one token of [a-z0-9_] that is easy to spot
// in logs and source (secret scanners match the prefix).
const (
	// Prefix starts every API key.
	Prefix = "gh_"
	// IDBytes is the randomness in a key id.
	IDBytes = 10
	// SecretBytes is the randomness in a key secret.
	SecretBytes = 32
	// idPrefix starts a key id, so ids are recognisable too.
	idPrefix = "k"
)

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// Lengths of the encoded parts.
var (
	idLen     = len(idPrefix) + enc.EncodedLen(IDBytes)
	secretLen = enc.EncodedLen(SecretBytes)
	// KeyLen is the length of every API key.
	KeyLen = len(Prefix) + idLen + 1 + secretLen
)

// Generate returns a new key id, the full key to give to its owner, and the
// hash to store.
func Generate() (id, key string, hash []byte, err error) {
	var b [IDBytes + SecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", nil, fmt.Errorf("keystore: random: %w", err)
	}
	id = idPrefix + strings.ToLower(enc.EncodeToString(b[:IDBytes]))
	key = Prefix + id + "_" + strings.ToLower(enc.EncodeToString(b[IDBytes:]))
	return id, key, Hash(key), nil
}

// Parse returns the id inside key, or [ErrMalformedKey].
func Parse(key string) (id string, err error) {
	if len(key) != KeyLen || !strings.HasPrefix(key, Prefix) {
		return "", fmt.Errorf("%w: want %q followed by %d characters", ErrMalformedKey, Prefix, KeyLen-len(Prefix))
	}
	rest := key[len(Prefix):]
	if rest[idLen] != '_' || !strings.HasPrefix(rest, idPrefix) {
		return "", fmt.Errorf("%w: bad layout", ErrMalformedKey)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if i == idLen {
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", fmt.Errorf("%w: unexpected character at %d", ErrMalformedKey, len(Prefix)+i)
		}
	}
	return rest[:idLen], nil
}

// ValidID reports whether id has the shape of a key id.
func ValidID(id string) bool {
	if len(id) != idLen || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	for i := len(idPrefix); i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Hash returns the stored form of key: SHA-256, which is the right hash for
// a secret of 256 random bits (no dictionary to defend against, so a slow
// password hash would only cost CPU).
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Matches compares key's hash with a stored hash in constant time.
func Matches(key string, stored []byte) bool {
	return subtle.ConstantTimeCompare(Hash(key), stored) == 1
}
