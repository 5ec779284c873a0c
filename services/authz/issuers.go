package authz

import (
	"fmt"
	"strings"

	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
)

// Limits of an issuer's configuration.
const (
	// MaxIssuerAudiences bounds OIDCIssuer.Audiences and ClientIDs.
	MaxIssuerAudiences = 32
)

// OIDCIssuer is one trusted external token issuer. Tokens are verified with
// the issuer's JWKS, fetched and cached (see Config.JWKSMinRefresh).
//
// For Amazon Cognito set IssuerURL to the user pool
// (https://cognito-idp.<region>.amazonaws.com/<pool id>), Cognito to true
// and Audiences to the app client ids: access tokens must then carry
// token_use "access" and one of those as client_id, ID tokens token_use
// "id" and one of them as aud. Groups default to cognito:groups.
type OIDCIssuer struct {
	// IssuerURL is the exact `iss` of the issuer's tokens, required.
	IssuerURL string
	// JWKSURL is the issuer's jwks_uri; "" discovers it from
	// IssuerURL/.well-known/openid-configuration.
	JWKSURL string
	// Audiences are the accepted `aud` values (client ids for Cognito);
	// empty means Config.Audience.
	Audiences []string
	// ClientIDs are the accepted client_id values of Cognito access tokens;
	// empty means Audiences.
	ClientIDs []string
	// Cognito applies the token_use rules described above.
	Cognito bool
	// TenantClaim, PlanClaim and GroupsClaim name the claims mapped to the
	// identity; "" means tenant|custom:tenant, plan|custom:plan and
	// groups|cognito:groups.
	TenantClaim string
	PlanClaim   string
	GroupsClaim string
}

func (o OIDCIssuer) validate() error {
	if err := validIssuerURL(o.IssuerURL); err != nil {
		return fmt.Errorf("IssuerURL: %v", err)
	}
	if o.JWKSURL != "" {
		if err := validIssuerURL(o.JWKSURL); err != nil {
			return fmt.Errorf("JWKSURL: %v", err)
		}
	}
	if len(o.Audiences) > MaxIssuerAudiences || len(o.ClientIDs) > MaxIssuerAudiences {
		return fmt.Errorf("at most %d audiences and %d client ids", MaxIssuerAudiences, MaxIssuerAudiences)
	}
	for _, a := range append(append([]string{}, o.Audiences...), o.ClientIDs...) {
		if a == "" || len(a) > verifier.MaxClaimBytes {
			return fmt.Errorf("audiences and client ids must be 1 to %d bytes", verifier.MaxClaimBytes)
		}
	}
	for name, c := range map[string]string{"TenantClaim": o.TenantClaim, "PlanClaim": o.PlanClaim, "GroupsClaim": o.GroupsClaim} {
		if len(c) > verifier.MaxClaimBytes || strings.ContainsFunc(c, func(r rune) bool { return r <= ' ' }) {
			return fmt.Errorf("%s %q must be at most %d bytes without spaces", name, c, verifier.MaxClaimBytes)
		}
	}
	return nil
}

// buildIssuers returns the verifier issuers of cfg's external issuers.
func buildIssuers(cfg Config) ([]verifier.Issuer, error) {
	out := make([]verifier.Issuer, 0, len(cfg.Issuers))
	for _, o := range cfg.Issuers {
		keys, err := verifier.NewJWKS(verifier.JWKSConfig{
			URL:        o.JWKSURL,
			Issuer:     o.IssuerURL,
			Client:     cfg.HTTPClient,
			MinRefresh: cfg.JWKSMinRefresh,
			MaxAge:     cfg.JWKSMaxAge,
			Timeout:    JWKSFetchTimeout,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, verifier.Issuer{
			URL:       o.IssuerURL,
			Keys:      keys,
			Audiences: o.Audiences,
			ClientIDs: o.ClientIDs,
			Cognito:   o.Cognito,
			Claims:    verifier.ClaimNames{Tenant: o.TenantClaim, Plan: o.PlanClaim, Groups: o.GroupsClaim},
		})
	}
	return out, nil
}
