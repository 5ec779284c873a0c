package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/golang-jwt/jwt/v5"
)

// Limits applied to every token before and after its signature is checked.
const (
	// MaxTokenBytes is the longest token accepted; real OIDC tokens are a few
	// kilobytes at most.
	MaxTokenBytes = 16 << 10
	// MaxClaimBytes bounds sub, tenant, plan and each group name, since they
	// travel in every Gh-Identity header.
	MaxClaimBytes = 256
	// MaxGroups bounds the number of groups a token may carry.
	MaxGroups = 64
)

// DefaultMethods are the signing algorithms accepted when [JWTConfig.Methods]
// is empty: asymmetric only. "none" and the HMAC family are never accepted,
// because an HMAC "signature" keyed with a public key proves nothing.
var DefaultMethods = []string{
	"ES256", "ES384", "ES512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"EdDSA",
}

// KeySet finds an issuer's public verification key by key id. A key id the
// set does not know is a *[Refusal] wrapping [ErrUnknownKey]. The dev issuer
// uses [StaticKeys]; external issuers will use a JWKS-backed set.
type KeySet interface {
	Key(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// StaticKeys is a fixed [KeySet], from key id to public key.
type StaticKeys map[string]crypto.PublicKey

var _ KeySet = StaticKeys(nil)

// Key returns the key with id kid.
func (s StaticKeys) Key(_ context.Context, kid string) (crypto.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, refuse(ErrUnknownKey, "token key id %q is not known", clip(kid))
}

// Issuer is one trusted token issuer.
type Issuer struct {
	// URL is the exact `iss` value the issuer's tokens carry.
	URL string
	// Keys holds the issuer's verification keys.
	Keys KeySet
}

// JWTConfig configures a [JWT] verifier.
type JWTConfig struct {
	// Issuers are the trusted issuers; a token from any other is refused.
	Issuers []Issuer
	// Audience must be one of the token's `aud` values.
	Audience string
	// ClockSkew is the tolerance applied to exp, nbf and iat.
	ClockSkew time.Duration
	// Methods are the accepted `alg` values; empty means [DefaultMethods].
	// HMAC and "none" are rejected even when listed.
	Methods []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// JWT verifies bearer tokens signed by trusted issuers. It is safe for
// concurrent use.
type JWT struct {
	issuers  map[string]KeySet
	audience string
	skew     time.Duration
	methods  []string
	now      func() time.Time
	parser   *jwt.Parser
}

var _ Verifier = (*JWT)(nil)

// NewJWT returns a verifier for cfg.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if len(cfg.Issuers) == 0 {
		return nil, fmt.Errorf("%w: no trusted issuers", ErrInvalidConfig)
	}
	if cfg.Audience == "" {
		return nil, fmt.Errorf("%w: empty audience", ErrInvalidConfig)
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("%w: negative clock skew %v", ErrInvalidConfig, cfg.ClockSkew)
	}
	methods := cfg.Methods
	if len(methods) == 0 {
		methods = DefaultMethods
	}
	for _, m := range methods {
		if !slices.Contains(DefaultMethods, m) {
			return nil, fmt.Errorf("%w: algorithm %q is not an asymmetric signing algorithm", ErrInvalidConfig, m)
		}
	}
	v := &JWT{
		issuers:  make(map[string]KeySet, len(cfg.Issuers)),
		audience: cfg.Audience,
		skew:     cfg.ClockSkew,
		methods:  slices.Clone(methods),
		now:      cfg.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	for _, is := range cfg.Issuers {
		if is.URL == "" || is.Keys == nil {
			return nil, fmt.Errorf("%w: issuer needs a URL and keys", ErrInvalidConfig)
		}
		if _, dup := v.issuers[is.URL]; dup {
			return nil, fmt.Errorf("%w: issuer %s listed twice", ErrInvalidConfig, is.URL)
		}
		v.issuers[is.URL] = is.Keys
	}
	// Claims are validated by hand below, so that every refusal names
	// exactly what was wrong.
	v.parser = jwt.NewParser(jwt.WithValidMethods(v.methods), jwt.WithoutClaimsValidation())
	return v, nil
}

// claims are the token claims Gatehouse reads. Cognito spells tenant and
// plan as custom attributes and groups as cognito:groups.
type claims struct {
	jwt.RegisteredClaims
	Tenant        string           `json:"tenant,omitempty"`
	CustomTenant  string           `json:"custom:tenant,omitempty"`
	Plan          string           `json:"plan,omitempty"`
	CustomPlan    string           `json:"custom:plan,omitempty"`
	Groups        jwt.ClaimStrings `json:"groups,omitempty"`
	CognitoGroups jwt.ClaimStrings `json:"cognito:groups,omitempty"`
}

// Verify checks token (raw or with a "Bearer " prefix) and maps its claims
// to an identity of kind [identity.KindUser].
func (v *JWT) Verify(ctx context.Context, token string) (identity.Identity, error) {
	token = TrimBearer(token)
	if token == "" {
		return identity.Identity{}, refuse(ErrNoCredential, "no credential given")
	}
	if len(token) > MaxTokenBytes {
		return identity.Identity{}, refuse(ErrMalformed, "token is malformed: longer than %d bytes", MaxTokenBytes)
	}
	var c claims
	var keyErr error
	parsed, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		key, err := v.key(ctx, t)
		keyErr = err
		return key, err
	})
	if err != nil {
		return identity.Identity{}, v.parseError(parsed, err, keyErr)
	}
	return v.validate(&c)
}

// key selects the verification key by issuer and key id.
func (v *JWT) key(ctx context.Context, t *jwt.Token) (crypto.PublicKey, error) {
	iss, _ := t.Claims.GetIssuer()
	keys, ok := v.issuers[iss]
	if !ok {
		if iss == "" {
			return nil, refuse(ErrIssuer, "token has no issuer (iss)")
		}
		return nil, refuse(ErrIssuer, "token issuer %q is not trusted", clip(iss))
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, refuse(ErrUnknownKey, "token has no key id (kid)")
	}
	return keys.Key(ctx, kid)
}

// parseError turns a parse failure into a refusal with a specific reason.
func (v *JWT) parseError(t *jwt.Token, err, keyErr error) error {
	if t != nil && t.Header != nil {
		alg, _ := t.Header["alg"].(string)
		if !slices.Contains(v.methods, alg) {
			if alg == "" {
				return refuse(ErrAlgorithm, "token algorithm is not given")
			}
			return refuse(ErrAlgorithm, "token algorithm %s is not allowed", clip(alg))
		}
	}
	if keyErr != nil {
		// A refusal from the key lookup, or a failure of the key set itself.
		return keyErr
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(ErrSignature, "token signature is invalid")
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg := err.Error()
		if !strings.HasPrefix(msg, "token is malformed") {
			msg = "token is malformed: " + msg
		}
		return refuse(ErrMalformed, "%s", msg)
	default:
		return refuse(ErrMalformed, "token is malformed: %v", err)
	}
}

// validate checks the claims of a token whose signature is good.
func (v *JWT) validate(c *claims) (identity.Identity, error) {
	now := v.now()
	if c.ExpiresAt == nil {
		return identity.Identity{}, refuse(ErrNoExpiry, "token has no expiry (exp)")
	}
	exp := c.ExpiresAt.Time
	if now.After(exp.Add(v.skew)) {
		return identity.Identity{}, refuse(ErrExpired, "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(v.skew).Before(c.NotBefore.Time) {
		return identity.Identity{}, refuse(ErrNotYetValid, "token not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt != nil && now.Add(v.skew).Before(c.IssuedAt.Time) {
		return identity.Identity{}, refuse(ErrNotYetValid, "token not valid before %s (issued in the future)", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if !slices.Contains(c.Audience, v.audience) {
		return identity.Identity{}, refuse(ErrAudience, "token audience does not include %s", v.audience)
	}
	if c.Subject == "" {
		return identity.Identity{}, refuse(ErrNoSubject, "token has no sub")
	}
	id := identity.Identity{
		Sub:       c.Subject,
		Issuer:    c.Issuer,
		Tenant:    firstNonEmpty(c.Tenant, c.CustomTenant),
		Plan:      firstNonEmpty(c.Plan, c.CustomPlan),
		Groups:    []string(c.Groups),
		Kind:      identity.KindUser,
		ExpiresAt: exp,
	}
	if len(id.Groups) == 0 {
		id.Groups = []string(c.CognitoGroups)
	}
	if len(id.Groups) == 0 {
		id.Groups = nil
	}
	if err := checkSizes(id); err != nil {
		return identity.Identity{}, err
	}
	id.ChannelID = identity.ChannelIDFor(id.Issuer, id.Sub)
	return id, nil
}

func checkSizes(id identity.Identity) error {
	for _, f := range [...]struct{ name, val string }{{"sub", id.Sub}, {"tenant", id.Tenant}, {"plan", id.Plan}} {
		if len(f.val) > MaxClaimBytes {
			return refuse(ErrMalformed, "token is malformed: claim %s is longer than %d bytes", f.name, MaxClaimBytes)
		}
	}
	if len(id.Groups) > MaxGroups {
		return refuse(ErrMalformed, "token is malformed: %d groups, at most %d are allowed", len(id.Groups), MaxGroups)
	}
	for _, g := range id.Groups {
		if g == "" || len(g) > MaxClaimBytes {
			return refuse(ErrMalformed, "token is malformed: a group name is empty or longer than %d bytes", MaxClaimBytes)
		}
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
