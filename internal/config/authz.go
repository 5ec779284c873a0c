package config

import (
	"errors"
)

// Authz configures identity.
type Authz struct {
	// DevIssuerURL is the `iss` of tokens minted by the development issuer.
	// Default https://localhost:8443/dev.
	DevIssuerURL string `yaml:"dev_issuer_url"`
	// Audience is the accepted `aud`. Default gatehouse.
	Audience string `yaml:"audience"`
}

func (a Authz) validate() []error {
	var errs []error
	if a.Audience == "" {
		errs = append(errs, errors.New("authz.audience: must not be empty"))
	}
	return errs
}
