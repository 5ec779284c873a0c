package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// Paths of the API key admin API.
const (
	// PathKeys lists (GET) and creates (POST) API keys.
	PathKeys = "/v1/keys"
	// MaxKeyRequestBytes bounds a key creation body.
	MaxKeyRequestBytes = 16 << 10
)

// keyCreateBody is the JSON body of POST /v1/keys.
type keyCreateBody struct {
	Name       string   `json:"name"`
	Owner      string   `json:"owner"`
	Issuer     string   `json:"issuer"`
	Tenant     string   `json:"tenant"`
	Plan       string   `json:"plan"`
	Groups     []string `json:"groups"`
	Models     []string `json:"models"`
	Namespaces []string `json:"namespaces"`
	// TTL is a Go duration ("720h"); empty means the key does not expire.
	TTL string `json:"ttl"`
}

// keysRoutes registers the API key admin API. Every call is authenticated
// like any other request and forwarded to authz, which decides whether the
// caller is an admin (a member of its configured admin group).
func (s *Service) keysRoutes() {
	s.mux.HandleFunc("GET "+PathKeys, s.handleKeysList)
	s.mux.HandleFunc("POST "+PathKeys, s.handleKeysCreate)
	s.mux.HandleFunc("DELETE "+PathKeys+"/{id}", s.handleKeysRevoke)
}

// keysCaller verifies the caller of an admin request.
func (s *Service) keysCaller(w http.ResponseWriter, r *http.Request) (identity.Identity, bool) {
	id, perr := s.verify(r.Context(), credentialFrom(r.Header.Get(headerAuthorization), r.Header.Get(headerAPIKey)))
	if perr != nil {
		writeKeysAPIError(w, perr.Status(), perr.ErrorType, perr.Message)
		return identity.Identity{}, false
	}
	return id, true
}

func (s *Service) handleKeysList(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.keysCaller(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := bus.KeyListRequest{Caller: caller, Owner: q.Get("owner"), IncludeRevoked: q.Get("revoked") == "true"}
	resp, err := keysRequest[bus.KeyListResponse](r.Context(), s, s.subj.AuthzKeysList(), req)
	if err != nil {
		s.writeKeysError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) handleKeysCreate(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.keysCaller(w, r)
	if !ok {
		return
	}
	var body keyCreateBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxKeyRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeKeysAPIError(w, http.StatusBadRequest, "BadRequestException", fmt.Sprintf("body must be a JSON object of at most %d bytes with name, owner, tenant, plan, groups, models, namespaces, ttl: %v", MaxKeyRequestBytes, err))
		return
	}
	var ttl time.Duration
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil {
			writeKeysAPIError(w, http.StatusBadRequest, "BadRequestException", "ttl must be a duration such as 720h")
			return
		}
		ttl = d
	}
	req := bus.KeyCreateRequest{Caller: caller, Name: body.Name, Owner: body.Owner, Issuer: body.Issuer, Tenant: body.Tenant,
		Plan: body.Plan, Groups: body.Groups, Models: body.Models, Namespaces: body.Namespaces, TTL: ttl}
	resp, err := keysRequest[bus.KeyCreateResponse](r.Context(), s, s.subj.AuthzKeysCreate(), req)
	if err != nil {
		s.writeKeysError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Service) handleKeysRevoke(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.keysCaller(w, r)
	if !ok {
		return
	}
	req := bus.KeyRevokeRequest{Caller: caller, ID: r.PathValue("id"), Reason: r.URL.Query().Get("reason")}
	resp, err := keysRequest[bus.KeyRevokeResponse](r.Context(), s, s.subj.AuthzKeysRevoke(), req)
	if err != nil {
		s.writeKeysError(w, err)
		return
	}
	// The broadcast reaches every edge, this one included, but only
	// asynchronously: apply it here first, so that a request sent through
	// this edge after the answer is already refused.
	s.applyRevocation(bus.Revocation{KeyID: resp.Key.ID, Reason: req.Reason, RevokedAt: resp.Key.RevokedAt})
	writeJSON(w, http.StatusOK, resp)
}

func keysRequest[Resp any](ctx context.Context, s *Service, subject string, req any) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthzTimeout)
	defer cancel()
	return bus.Request[Resp](ctx, s.nc, subject, req, nil)
}

// writeKeysError passes authz's refusal (400, 403, 404, 503) to the caller.
func (s *Service) writeKeysError(w http.ResponseWriter, err error) {
	var se *bus.ServiceError
	if errors.As(err, &se) {
		status := se.Status()
		typ := "BadRequestException"
		switch status {
		case http.StatusForbidden, http.StatusUnauthorized:
			typ = "UnauthorizedException"
		case http.StatusNotFound:
			typ = "NotFoundException"
		case http.StatusServiceUnavailable, http.StatusInternalServerError:
			typ = "ServiceUnavailableException"
		}
		writeKeysAPIError(w, status, typ, se.Description)
		return
	}
	s.log.Warn("authz unavailable", "op", "keys", "err", err)
	writeKeysAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "authorization service unavailable")
}

// writeKeysAPIError replies {"error":{"type","message"}}.
func writeKeysAPIError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"type": strings.TrimSpace(typ), "message": msg}})
}
