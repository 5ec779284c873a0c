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

// Issuer is one trusted token issuer and the rules its tokens must meet.
type Issuer struct {
	// URL is the exact `iss` value the issuer's tokens carry.
	URL string
	// Keys holds the issuer's verification keys.
	Keys KeySet
	// Audiences are the accepted `aud` values; empty means
	// [JWTConfig.Audience].
	Audiences []string
	// Cognito applies Amazon Cognito's rules: `token_use` must be "access"
	// (then `client_id` must be one of ClientIDs) or "id" (then `aud` must be
	// one of Audiences).
	Cognito bool
	// ClientIDs are the accepted `client_id` values of Cognito access
	// tokens; empty means Audiences (a Cognito app client id is both).
	ClientIDs []string
	// Claims says which claims carry tenant, plan and groups.
	Claims ClaimNames
}

// ClaimNames names the claims mapped to the identity's tenant, plan and
// groups. An empty name means the default: tenant then custom:tenant, plan
// then custom:plan, groups then cognito:groups.
type ClaimNames struct {
	Tenant string
	Plan   string
	Groups string
}

// JWTConfig configures a [JWT] verifier.
type JWTConfig struct {
	// Issuers are the trusted issuers; a token from any other is refused.
	Issuers []Issuer
	// Audience is the accepted `aud` of issuers that list no Audiences.
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
	issuers map[string]*Issuer
	skew    time.Duration
	methods []string
	now     func() time.Time
	parser  *jwt.Parser
}

var _ Verifier = (*JWT)(nil)

// NewJWT returns a verifier for cfg.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if len(cfg.Issuers) == 0 {
		return nil, fmt.Errorf("%w: no trusted issuers", ErrInvalidConfig)
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
		issuers: make(map[string]*Issuer, len(cfg.Issuers)),
		skew:    cfg.ClockSkew,
		methods: slices.Clone(methods),
		now:     cfg.Now,
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
		is.Audiences = slices.Clone(is.Audiences)
		if len(is.Audiences) == 0 && cfg.Audience != "" {
			is.Audiences = []string{cfg.Audience}
		}
		is.ClientIDs = slices.Clone(is.ClientIDs)
		if len(is.ClientIDs) == 0 {
			is.ClientIDs = is.Audiences
		}
		if len(is.Audiences) == 0 {
			return nil, fmt.Errorf("%w: issuer %s has no audience", ErrInvalidConfig, is.URL)
		}
		v.issuers[is.URL] = &is
	}
	// Claims are validated by hand below, so that every refusal names
	// exactly what was wrong.
	v.parser = jwt.NewParser(jwt.WithValidMethods(v.methods), jwt.WithoutClaimsValidation())
	return v, nil
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
	c := jwt.MapClaims{}
	var keyErr error
	var is *Issuer
	parsed, err := v.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		var key crypto.PublicKey
		is, key, keyErr = v.key(ctx, t)
		return key, keyErr
	})
	if err != nil {
		return identity.Identity{}, v.parseError(parsed, err, keyErr)
	}
	return v.validate(is, c)
}

// key selects the issuer and the verification key by issuer and key id.
func (v *JWT) key(ctx context.Context, t *jwt.Token) (*Issuer, crypto.PublicKey, error) {
	iss, _ := t.Claims.GetIssuer()
	is, ok := v.issuers[iss]
	if !ok {
		if iss == "" {
			return nil, nil, refuse(ErrIssuer, "token has no issuer (iss)")
		}
		return nil, nil, refuse(ErrIssuer, "token issuer %q is not trusted", clip(iss))
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, nil, refuse(ErrUnknownKey, "token has no key id (kid)")
	}
	key, err := is.Keys.Key(ctx, kid)
	return is, key, err
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

// validate checks the claims of a token from is whose signature is good.
func (v *JWT) validate(is *Issuer, c jwt.MapClaims) (identity.Identity, error) {
	now := v.now()
	expAt, err := c.GetExpirationTime()
	if err != nil {
		return identity.Identity{}, refuse(ErrMalformed, "token is malformed: exp is not a number")
	}
	if expAt == nil {
		return identity.Identity{}, refuse(ErrNoExpiry, "token has no expiry (exp)")
	}
	exp := expAt.Time
	if now.After(exp.Add(v.skew)) {
		return identity.Identity{}, refuse(ErrExpired, "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	nbf, err := c.GetNotBefore()
	if err != nil {
		return identity.Identity{}, refuse(ErrMalformed, "token is malformed: nbf is not a number")
	}
	if nbf != nil && now.Add(v.skew).Before(nbf.Time) {
		return identity.Identity{}, refuse(ErrNotYetValid, "token not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	iat, err := c.GetIssuedAt()
	if err != nil {
		return identity.Identity{}, refuse(ErrMalformed, "token is malformed: iat is not a number")
	}
	if iat != nil && now.Add(v.skew).Before(iat.Time) {
		return identity.Identity{}, refuse(ErrNotYetValid, "token not valid before %s (issued in the future)", iat.UTC().Format(time.RFC3339))
	}
	if err := v.audience(is, c); err != nil {
		return identity.Identity{}, err
	}
	sub, ok := c["sub"].(string)
	if _, present := c["sub"]; present && !ok {
		return identity.Identity{}, refuse(ErrMalformed, "token is malformed: claim sub is not a string")
	}
	if sub == "" {
		return identity.Identity{}, refuse(ErrNoSubject, "token has no sub")
	}
	id := identity.Identity{
		Sub:       sub,
		Issuer:    is.URL,
		Kind:      identity.KindUser,
		ExpiresAt: exp,
	}
	if id.Tenant, err = claimString(c, is.Claims.Tenant, "tenant", "custom:tenant"); err != nil {
		return identity.Identity{}, err
	}
	if id.Plan, err = claimString(c, is.Claims.Plan, "plan", "custom:plan"); err != nil {
		return identity.Identity{}, err
	}
	groups, err := claimGroups(c, is.Claims.Groups)
	if err != nil {
		return identity.Identity{}, err
	}
	id.Groups = groups
	if err := checkSizes(id); err != nil {
		return identity.Identity{}, err
	}
	id.ChannelID = identity.ChannelIDFor(id.Issuer, id.Sub)
	return id, nil
}

// audience applies the issuer's audience rules, Cognito's when configured.
func (v *JWT) audience(is *Issuer, c jwt.MapClaims) error {
	if is.Cognito {
		use, _ := c["token_use"].(string)
		switch use {
		case "access":
			cid, _ := c["client_id"].(string)
			if cid == "" {
				return refuse(ErrAudience, "access token has no client_id")
			}
			if !slices.Contains(is.ClientIDs, cid) {
				return refuse(ErrAudience, "token client_id %q is not accepted", clip(cid))
			}
			return nil
		case "id":
			aud, err := c.GetAudience()
			if err != nil || !containsAny(aud, is.Audiences) {
				return refuse(ErrAudience, "ID token audience is not one of the accepted client ids")
			}
			return nil
		case "":
			return refuse(ErrTokenUse, "token has no token_use (want access or id)")
		default:
			return refuse(ErrTokenUse, "token_use %q is not accepted (want access or id)", clip(use))
		}
	}
	aud, err := c.GetAudience()
	if err != nil {
		return refuse(ErrMalformed, "token is malformed: aud is neither a string nor a list of strings")
	}
	if !containsAny(aud, is.Audiences) {
		return refuse(ErrAudience, "token audience does not include %s", strings.Join(is.Audiences, " or "))
	}
	return nil
}

func containsAny(have jwt.ClaimStrings, want []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// claimString returns the string claim named name, or when name is empty
// the first non-empty of the defaults.
func claimString(c jwt.MapClaims, name string, defaults ...string) (string, error) {
	names := defaults
	if name != "" {
		names = []string{name}
	}
	for _, n := range names {
		raw, ok := c[n]
		if !ok {
			continue
		}
		s, ok := raw.(string)
		if !ok {
			return "", refuse(ErrMalformed, "token is malformed: claim %s is not a string", n)
		}
		if s != "" {
			return s, nil
		}
	}
	return "", nil
}

// claimGroups reads the groups claim (a list of strings, or one string of
// space-separated names), by default groups then cognito:groups.
func claimGroups(c jwt.MapClaims, name string) ([]string, error) {
	names := []string{name}
	if name == "" {
		names = []string{"groups", "cognito:groups"}
	}
	for _, n := range names {
		raw, ok := c[n]
		if !ok {
			continue
		}
		var out []string
		switch g := raw.(type) {
		case string:
			out = strings.Fields(g)
		case []any:
			if len(g) > MaxGroups {
				return nil, refuse(ErrMalformed, "token is malformed: %d groups, at most %d are allowed", len(g), MaxGroups)
			}
			for _, x := range g {
				s, ok := x.(string)
				if !ok {
					return nil, refuse(ErrMalformed, "token is malformed: claim %s holds a non-string group", n)
				}
				out = append(out, s)
			}
		default:
			return nil, refuse(ErrMalformed, "token is malformed: claim %s is not a list of groups", n)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
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
