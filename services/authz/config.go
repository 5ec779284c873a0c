package authz

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
)

// Defaults applied by [Config] and [LoadOrCreateDevIssuer].
const (
	// DefaultDevIssuerURL is the dev issuer's `iss` when none is configured.
	DefaultDevIssuerURL = "https://localhost:8443/dev"
	// DefaultAudience is the accepted `aud` when none is configured.
	DefaultAudience = "gatehouse"
	// DefaultClockSkew is the tolerance for exp, nbf and iat.
	DefaultClockSkew = 30 * time.Second
	// MaxClockSkew bounds Config.ClockSkew: a larger skew would keep expired
	// tokens alive.
	MaxClockSkew = 5 * time.Minute
)

// Limits of the verify cache. They are per replica.
const (
	// VerifyCacheSize is the most verified tokens a replica remembers.
	VerifyCacheSize = 10_000
	// VerifyCacheMaxAge bounds how long a verified token is remembered even
	// when it is valid for longer, so a changed key set takes effect.
	VerifyCacheMaxAge = 5 * time.Minute
	// VerifyTimeout bounds one verification (key look-ups may do I/O).
	VerifyTimeout = 5 * time.Second
)

// Defaults of the external-issuer and API-key settings.
const (
	// DefaultJWKSMinRefresh is the shortest time between two fetches of an
	// issuer's JWKS triggered by unknown key ids.
	DefaultJWKSMinRefresh = time.Minute
	// MinJWKSMinRefresh bounds Config.JWKSMinRefresh from below, so forged
	// key ids can never make authz hammer an identity provider.
	MinJWKSMinRefresh = 10 * time.Millisecond
	// DefaultJWKSMaxAge is how long fetched keys are used before a refetch.
	DefaultJWKSMaxAge = time.Hour
	// JWKSFetchTimeout bounds one JWKS or discovery fetch.
	JWKSFetchTimeout = 5 * time.Second
	// DefaultAdminGroup is the group whose members may manage API keys.
	DefaultAdminGroup = "gatehouse-admins"
	// DefaultKeyLastUsedFlush is how often last-use times are written.
	DefaultKeyLastUsedFlush = 2 * time.Second
	// MaxKeyLastUsedFlush bounds Config.KeyLastUsedFlush.
	MaxKeyLastUsedFlush = time.Minute
	// KeyCacheMaxAge bounds how long a replica trusts a cached key record; a
	// revocation broadcast drops it at once, this only bounds the damage of
	// a missed broadcast.
	KeyCacheMaxAge = 30 * time.Second
	// KeyCacheSize is the most key records a replica caches.
	KeyCacheSize = 10_000
	// MaxKeyTTL is the longest lifetime of an API key.
	MaxKeyTTL = 5 * 365 * 24 * time.Hour
	// MaxIssuers bounds Config.Issuers.
	MaxIssuers = 32
)

// Config configures the authz [Service]. The zero value plus DataDir is a
// working development configuration.
type Config struct {
	// Prefix is the subject prefix; "" means [bus.DefaultPrefix] ("gh").
	Prefix string
	// Logger receives the service's logs, scoped with svc=authz; nil means
	// slog.Default().
	Logger *slog.Logger
	// DataDir is required: the directory where the dev issuer's signing key
	// lives, in the file [DevIssuerKeyFile] with mode 0600. It is created
	// (mode 0700) when missing.
	DataDir string
	// DevIssuerURL is the dev issuer's `iss`, an absolute http(s) URL;
	// "" means [DefaultDevIssuerURL].
	DevIssuerURL string
	// Audience is the `aud` a token must include; "" means [DefaultAudience].
	Audience string
	// ClockSkew is the allowed clock difference for exp, nbf and iat;
	// 0 means [DefaultClockSkew], and at most [MaxClockSkew] is accepted.
	ClockSkew time.Duration
	// Policy is the channel policy; a Policy with nil Namespaces means
	// [DefaultPolicy]().
	Policy Policy
	// Models says which models a plan or group may invoke; the zero value
	// means [DefaultModelPolicy]() (every model for every verified caller).
	Models ModelPolicy
	// Issuers are the trusted external OIDC issuers (Cognito, Keycloak,
	// Auth0, Entra, ...), besides the dev issuer. At most [MaxIssuers].
	Issuers []OIDCIssuer
	// JWKSMinRefresh is the shortest time between two JWKS fetches of one
	// issuer caused by unknown key ids; 0 means [DefaultJWKSMinRefresh], at
	// least [MinJWKSMinRefresh].
	JWKSMinRefresh time.Duration
	// JWKSMaxAge is how long fetched keys are used; 0 means
	// [DefaultJWKSMaxAge].
	JWKSMaxAge time.Duration
	// HTTPClient fetches JWKS and discovery documents; nil means a client
	// with [JWKSFetchTimeout].
	HTTPClient *http.Client
	// DatabaseURL keeps API keys in Postgres (postgres://...). Secret.
	DatabaseURL string
	// SQLitePath keeps API keys in this SQLite file when DatabaseURL is
	// empty (the ledger file is fine: the tables are separate). With
	// neither, API keys are disabled and refused.
	SQLitePath string
	// AdminGroup is the group whose members may manage API keys; ""
	// means [DefaultAdminGroup].
	AdminGroup string
	// KeyLastUsedFlush is how often last-use times of API keys are
	// written, batched; 0 means [DefaultKeyLastUsedFlush], at most
	// [MaxKeyLastUsedFlush].
	KeyLastUsedFlush time.Duration
}

// withDefaults returns c with every default applied.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DevIssuerURL == "" {
		c.DevIssuerURL = DefaultDevIssuerURL
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.Policy.Namespaces == nil {
		c.Policy = DefaultPolicy()
	}
	if !c.Models.configured() {
		c.Models = DefaultModelPolicy()
	}
	if c.JWKSMinRefresh == 0 {
		c.JWKSMinRefresh = DefaultJWKSMinRefresh
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.AdminGroup == "" {
		c.AdminGroup = DefaultAdminGroup
	}
	if c.KeyLastUsedFlush == 0 {
		c.KeyLastUsedFlush = DefaultKeyLastUsedFlush
	}
	return c
}

// Validate reports the first problem with c, after applying defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Prefix != "" && !bus.ValidPrefix(c.Prefix) {
		return fmt.Errorf("%w: prefix %q must be dot-separated tokens of letters, digits, '-' and '_'", ErrInvalidConfig, c.Prefix)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: DataDir is required (the dev issuer's key is kept there)", ErrInvalidConfig)
	}
	if err := validIssuerURL(c.DevIssuerURL); err != nil {
		return fmt.Errorf("%w: DevIssuerURL: %v", ErrInvalidConfig, err)
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return fmt.Errorf("%w: ClockSkew %v must be between 0 and %v", ErrInvalidConfig, c.ClockSkew, MaxClockSkew)
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Models.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if len(c.Issuers) > MaxIssuers {
		return fmt.Errorf("%w: Issuers: %d issuers, at most %d", ErrInvalidConfig, len(c.Issuers), MaxIssuers)
	}
	seen := map[string]bool{c.DevIssuerURL: true}
	for i, is := range c.Issuers {
		if err := is.validate(); err != nil {
			return fmt.Errorf("%w: Issuers[%d]: %v", ErrInvalidConfig, i, err)
		}
		if seen[is.IssuerURL] {
			return fmt.Errorf("%w: Issuers[%d]: issuer %s is listed twice (or is the dev issuer)", ErrInvalidConfig, i, is.IssuerURL)
		}
		seen[is.IssuerURL] = true
	}
	if c.JWKSMinRefresh < MinJWKSMinRefresh {
		return fmt.Errorf("%w: JWKSMinRefresh %v must be at least %v", ErrInvalidConfig, c.JWKSMinRefresh, MinJWKSMinRefresh)
	}
	if c.JWKSMaxAge < c.JWKSMinRefresh {
		return fmt.Errorf("%w: JWKSMaxAge %v must be at least JWKSMinRefresh %v", ErrInvalidConfig, c.JWKSMaxAge, c.JWKSMinRefresh)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("%w: DatabaseURL must start with postgres:// (leave it empty for SQLite)", ErrInvalidConfig)
	}
	if strings.ContainsFunc(c.AdminGroup, func(r rune) bool { return r <= ' ' }) || len(c.AdminGroup) > verifier.MaxClaimBytes {
		return fmt.Errorf("%w: AdminGroup %q must be at most %d bytes without spaces", ErrInvalidConfig, c.AdminGroup, verifier.MaxClaimBytes)
	}
	if c.KeyLastUsedFlush < 0 || c.KeyLastUsedFlush > MaxKeyLastUsedFlush {
		return fmt.Errorf("%w: KeyLastUsedFlush %v must be between 0 and %v", ErrInvalidConfig, c.KeyLastUsedFlush, MaxKeyLastUsedFlush)
	}
	return nil
}

// validIssuerURL accepts an absolute http or https URL without query or
// fragment, as OIDC requires of `iss`.
func validIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}
