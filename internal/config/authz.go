package config

import (
	"errors"
	"fmt"
	"time"
)

// Authz configures identity.
type Authz struct {
	// DevIssuerURL is the `iss` of tokens minted by the development issuer.
	// Default https://localhost:8443/dev.
	DevIssuerURL string `yaml:"dev_issuer_url"`
	// Audience is the accepted `aud`. Default gatehouse.
	Audience string `yaml:"audience"`
	// Issuers are trusted external OIDC issuers (Cognito, Keycloak, ...).
	Issuers []AuthzIssuer `yaml:"issuers"`
	// JWKSMinRefresh is the shortest time between two JWKS fetches of one
	// issuer caused by unknown key ids. Default 1m.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	// AdminGroup is the group whose members may manage API keys over
	// /v1/keys. Default gatehouse-admins.
	AdminGroup string `yaml:"admin_group"`
	// Models says which models each plan and group may invoke (globs).
	// Unset: every model for every verified caller.
	Models *AuthzModels `yaml:"models"`
	// KeyLastUsedFlush is how often API key last-use times are written.
	// Default 2s. API keys live in the ledger database (meter.database_url,
	// or the SQLite ledger file), in tables of their own.
	KeyLastUsedFlush time.Duration `yaml:"key_last_used_flush"`
}

// AuthzIssuer is one trusted external OIDC issuer.
type AuthzIssuer struct {
	// IssuerURL is the exact `iss` (for Cognito the user pool URL).
	IssuerURL string `yaml:"issuer_url"`
	// JWKSURL is the jwks_uri; empty uses OIDC discovery.
	JWKSURL string `yaml:"jwks_url"`
	// Audiences are the accepted `aud` (Cognito: app client ids).
	Audiences []string `yaml:"audiences"`
	// ClientIDs are the accepted Cognito access token client_id; default audiences.
	ClientIDs []string `yaml:"client_ids"`
	// Cognito applies Cognito's token_use rules.
	Cognito bool `yaml:"cognito"`
	// TenantClaim, PlanClaim, GroupsClaim name the mapped claims.
	TenantClaim string `yaml:"tenant_claim"`
	PlanClaim   string `yaml:"plan_claim"`
	GroupsClaim string `yaml:"groups_claim"`
}

// AuthzModels is the model access policy.
type AuthzModels struct {
	// Default lists models every verified caller may invoke.
	Default []string `yaml:"default"`
	// Plans maps a plan to the models it may invoke.
	Plans map[string][]string `yaml:"plans"`
	// Groups maps a group to the models its members may invoke.
	Groups map[string][]string `yaml:"groups"`
}

func (a Authz) validate() []error {
	var errs []error
	if a.Audience == "" {
		errs = append(errs, errors.New("authz.audience: must not be empty"))
	}
	for i, is := range a.Issuers {
		if is.IssuerURL == "" {
			errs = append(errs, fmt.Errorf("authz.issuers[%d].issuer_url: must not be empty", i))
		}
	}
	if a.JWKSMinRefresh < 0 {
		errs = append(errs, errors.New("authz.jwks_min_refresh: must not be negative"))
	}
	if a.KeyLastUsedFlush < 0 {
		errs = append(errs, errors.New("authz.key_last_used_flush: must not be negative"))
	}
	return errs
}
