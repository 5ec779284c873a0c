package edge

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Well-known paths of the development issuer, so Gatehouse can be its own
// OIDC provider for local use and tests.
const (
	PathOIDCDiscovery = "/.well-known/openid-configuration"
	PathJWKS          = "/.well-known/jwks.json"
)

// wellKnownRoutes registers discovery and JWKS.
func (s *Service) wellKnownRoutes() {
	s.mux.HandleFunc("GET "+PathOIDCDiscovery, s.handleWellKnownDiscovery)
	s.mux.HandleFunc("GET "+PathJWKS, s.handleWellKnownJWKS)
}

func (s *Service) devJWKS(ctx context.Context) (bus.JWKSResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthzTimeout)
	defer cancel()
	return bus.Request[bus.JWKSResponse](ctx, s.nc, s.subj.AuthzJWKS(), struct{}{}, nil)
}

// handleWellKnownJWKS serves the dev issuer's JSON Web Key Set, fetched from authz.
func (s *Service) handleWellKnownJWKS(w http.ResponseWriter, r *http.Request) {
	resp, err := s.devJWKS(r.Context())
	if err != nil {
		s.log.Warn("jwks from authz", "err", err)
		http.Error(w, "authorization service unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(resp.JWKS)
}

// handleWellKnownDiscovery serves the OIDC discovery document of the dev issuer. Its
// jwks_uri points at this edge, as the request reached it.
func (s *Service) handleWellKnownDiscovery(w http.ResponseWriter, r *http.Request) {
	resp, err := s.devJWKS(r.Context())
	if err != nil {
		s.log.Warn("jwks from authz", "err", err)
		http.Error(w, "authorization service unavailable", http.StatusServiceUnavailable)
		return
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	doc := map[string]any{
		"issuer":                                resp.Issuer,
		"jwks_uri":                              scheme + "://" + r.Host + PathJWKS,
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"id_token"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tenant", "plan", "groups"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(doc)
}
