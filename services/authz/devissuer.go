package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/jwk"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
	"github.com/golang-jwt/jwt/v5"
)

// Dev issuer settings.
const (
	// DevIssuerKeyFile is the name, inside the data directory, of the dev
	// issuer's PKCS #8 PEM private key. It is written with mode 0600 and a
	// key file readable by group or others is refused.
	DevIssuerKeyFile = "dev-issuer.pem"
	// DefaultDevTokenTTL is the lifetime of a minted token when
	// [DevClaims].TTL is zero.
	DefaultDevTokenTTL = 12 * time.Hour
	// MaxDevTokenTTL is the longest lifetime [DevIssuer.Mint] signs.
	MaxDevTokenTTL = 30 * 24 * time.Hour
)

// DevIssuer is the built-in development token issuer: it signs ES256 JWTs
// with a P-256 key kept in the data directory, whose key id is the key's
// RFC 7638 thumbprint. It is used by the authz service and by
// `gatehouse token`. A DevIssuer is immutable and safe for concurrent use.
type DevIssuer struct {
	key      *ecdsa.PrivateKey
	pub      jwk.Key
	issuer   string
	audience string
}

// DevClaims are the claims of a development token.
type DevClaims struct {
	// Sub is the subject, required. Any string (an email, say) is fine;
	// callers whose sub is not a valid channel segment get a derived
	// channel id.
	Sub string
	// Tenant, Plan and Groups become the `tenant`, `plan` and `groups` claims.
	Tenant string
	Plan   string
	Groups []string
	// TTL is the token's lifetime; 0 means [DefaultDevTokenTTL], at most
	// [MaxDevTokenTTL].
	TTL time.Duration
	// Audience is the `aud` claim; "" means the issuer's audience.
	Audience string
}

// devTokenClaims is the JSON payload of a minted token.
type devTokenClaims struct {
	jwt.RegisteredClaims
	Tenant string   `json:"tenant,omitempty"`
	Plan   string   `json:"plan,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// LoadOrCreateDevIssuer loads the dev issuer's key from dataDir, creating
// the directory (0700) and a new key file (0600) when there is none. Several
// processes may call it at once on the same directory: exactly one key is
// created and all of them use it. issuerURL ("" means [DefaultDevIssuerURL])
// is the `iss` of minted tokens and audience ("" means [DefaultAudience]) their
// default `aud`.
func LoadOrCreateDevIssuer(dataDir, issuerURL, audience string) (*DevIssuer, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("%w: no data directory given", ErrDevIssuerKey)
	}
	if issuerURL == "" {
		issuerURL = DefaultDevIssuerURL
	}
	if audience == "" {
		audience = DefaultAudience
	}
	if err := validIssuerURL(issuerURL); err != nil {
		return nil, fmt.Errorf("%w: issuer URL: %v", ErrDevIssuerKey, err)
	}
	path := filepath.Join(dataDir, DevIssuerKeyFile)
	key, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(dataDir, path)
	}
	if err != nil {
		return nil, err
	}
	pub, err := jwk.FromECDSA(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDevIssuerKey, path, err)
	}
	return &DevIssuer{key: key, pub: pub, issuer: issuerURL, audience: audience}, nil
}

// loadKey reads a P-256 private key from a PEM file that only its owner
// may read. A missing file is reported as fs.ErrNotExist.
func loadKey(path string) (*ecdsa.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrDevIssuerKey, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o and may be read by others; it must be 0600 (chmod 600 %s)", ErrDevIssuerKey, path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDevIssuerKey, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s holds no PEM block", ErrDevIssuerKey, path)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: %s holds a %q PEM block, want PRIVATE KEY", ErrDevIssuerKey, path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDevIssuerKey, path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: %s is not a P-256 ECDSA key (ES256 needs one)", ErrDevIssuerKey, path)
	}
	return key, nil
}

// createKey generates a key and publishes it at path atomically: it is
// written to a temporary file and hard-linked into place, which fails if
// another process got there first, in which case that key is used.
func createKey(dataDir, path string) (*ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDevIssuerKey, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrDevIssuerKey, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrDevIssuerKey, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	tmp, err := os.CreateTemp(dataDir, ".dev-issuer-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDevIssuerKey, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: write %s: %w", ErrDevIssuerKey, tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path) // another process created it first
		}
		return nil, fmt.Errorf("%w: %w", ErrDevIssuerKey, err)
	}
	return key, nil
}

// Issuer returns the `iss` of the tokens this issuer signs.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience returns the default `aud` of minted tokens.
func (d *DevIssuer) Audience() string { return d.audience }

// KeyID returns the signing key's id (its RFC 7638 thumbprint).
func (d *DevIssuer) KeyID() string { return d.pub.Kid }

// JWKS returns the JSON Web Key Set holding the issuer's public key, as
// served at an OIDC provider's jwks_uri.
func (d *DevIssuer) JWKS() ([]byte, error) { return jwk.Marshal(d.pub) }

// Mint signs a token for c: ES256, header kid set, claims iss, sub, aud,
// iat, nbf, exp, jti, and tenant, plan and groups when given.
func (d *DevIssuer) Mint(c DevClaims) (string, error) {
	if c.Sub == "" {
		return "", fmt.Errorf("%w: sub is required", ErrInvalidClaims)
	}
	if len(c.Sub) > verifier.MaxClaimBytes || len(c.Tenant) > verifier.MaxClaimBytes || len(c.Plan) > verifier.MaxClaimBytes {
		return "", fmt.Errorf("%w: sub, tenant and plan are limited to %d bytes", ErrInvalidClaims, verifier.MaxClaimBytes)
	}
	if len(c.Groups) > verifier.MaxGroups {
		return "", fmt.Errorf("%w: %d groups, at most %d", ErrInvalidClaims, len(c.Groups), verifier.MaxGroups)
	}
	for _, g := range c.Groups {
		if g == "" || len(g) > verifier.MaxClaimBytes {
			return "", fmt.Errorf("%w: group names must be 1 to %d bytes", ErrInvalidClaims, verifier.MaxClaimBytes)
		}
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultDevTokenTTL
	}
	if ttl < 0 || ttl > MaxDevTokenTTL {
		return "", fmt.Errorf("%w: TTL %v must be between 0 and %v", ErrInvalidClaims, c.TTL, MaxDevTokenTTL)
	}
	aud := c.Audience
	if aud == "" {
		aud = d.audience
	}
	now := time.Now().Truncate(time.Second)
	claims := devTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    d.issuer,
			Subject:   c.Sub,
			Audience:  jwt.ClaimStrings{aud},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        bus.NewID(),
		},
		Tenant: c.Tenant,
		Plan:   c.Plan,
		Groups: c.Groups,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = d.pub.Kid
	s, err := tok.SignedString(d.key)
	if err != nil {
		return "", fmt.Errorf("authz: sign dev token: %w", err)
	}
	return s, nil
}

// keySet returns the verification keys for the verifier.
func (d *DevIssuer) keySet() verifier.StaticKeys {
	return verifier.StaticKeys{d.pub.Kid: &d.key.PublicKey}
}
