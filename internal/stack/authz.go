package stack

import (
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/nats-io/nats.go"
)

func buildAuthz(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return authz.New(AuthzConfig(cfg, log), nc)
}

// AuthzConfig maps the configuration to the authz service's. API keys are
// kept in the ledger database: Postgres when meter.database_url is set,
// else the SQLite ledger file, in tables of their own.
func AuthzConfig(cfg config.Config, log *slog.Logger) authz.Config {
	ac := authz.Config{
		Prefix:           cfg.NATS.Prefix,
		Logger:           log,
		DataDir:          cfg.DataDir,
		DevIssuerURL:     cfg.Authz.DevIssuerURL,
		Audience:         cfg.Authz.Audience,
		JWKSMinRefresh:   cfg.Authz.JWKSMinRefresh,
		AdminGroup:       cfg.Authz.AdminGroup,
		KeyLastUsedFlush: cfg.Authz.KeyLastUsedFlush,
		DatabaseURL:      cfg.Meter.DatabaseURL,
	}
	if ac.DatabaseURL == "" {
		ac.SQLitePath = cfg.SQLitePath()
	}
	for _, is := range cfg.Authz.Issuers {
		ac.Issuers = append(ac.Issuers, authz.OIDCIssuer{
			IssuerURL: is.IssuerURL, JWKSURL: is.JWKSURL, Audiences: is.Audiences, ClientIDs: is.ClientIDs,
			Cognito: is.Cognito, TenantClaim: is.TenantClaim, PlanClaim: is.PlanClaim, GroupsClaim: is.GroupsClaim,
		})
	}
	if m := cfg.Authz.Models; m != nil {
		ac.Models = authz.ModelPolicy{Default: m.Default, Plans: m.Plans, Groups: m.Groups}
		if ac.Models.Default == nil {
			ac.Models.Default = []string{} // configured: deny what is not listed
		}
	}
	return ac
}
