package authz

import (
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
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
