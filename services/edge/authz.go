package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// Subprotocols of the AppSync Events real-time endpoint.
const (
	// Subprotocol is echoed back as the chosen subprotocol.
	Subprotocol = "aws-appsync-event-ws"
	// headerSubprotocolPrefix starts the subprotocol that carries the
	// authorization headers as base64url JSON.
	headerSubprotocolPrefix = "header-"
	// maxHeaderSubprotocolLen bounds the encoded authorization subprotocol.
	maxHeaderSubprotocolLen = 16 << 10
)

// Header names carrying credentials.
const (
	headerAuthorization = "Authorization"
	headerAPIKey        = "x-api-key"
)

// credential is what a caller presented: a token or an API key.
type credential struct {
	Token  string
	APIKey string
}

func (c credential) empty() bool { return c.Token == "" && c.APIKey == "" }

// credentialFrom picks the credential from header values, preferring a
// token. "Bearer " is stripped.
func credentialFrom(authorization, apiKey string) credential {
	if t := strings.TrimSpace(authorization); t != "" {
		if len(t) > 7 && strings.EqualFold(t[:7], "bearer ") {
			t = strings.TrimSpace(t[7:])
		}
		return credential{Token: t}
	}
	return credential{APIKey: strings.TrimSpace(apiKey)}
}

// credentialFromAuthorization reads a frame's authorization object.
func credentialFromAuthorization(auth map[string]string) credential {
	return credentialFrom(protocol.Lookup(auth, headerAuthorization), protocol.Lookup(auth, headerAPIKey))
}

// upgradeCredential reads the credential of a WebSocket upgrade: first the
// "header-<base64url JSON>" subprotocol, then the ordinary headers.
func upgradeCredential(r *http.Request) (credential, *protocol.Error) {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if !strings.HasPrefix(p, headerSubprotocolPrefix) {
				continue
			}
			auth, err := decodeHeaderSubprotocol(strings.TrimPrefix(p, headerSubprotocolPrefix))
			if err != nil {
				return credential{}, protocol.BadRequest(err.Error())
			}
			if c := credentialFromAuthorization(auth); !c.empty() {
				return c, nil
			}
		}
	}
	return credentialFrom(r.Header.Get(headerAuthorization), r.Header.Get(headerAPIKey)), nil
}

var errHeaderSubprotocol = errors.New("the header- subprotocol must be base64url-encoded JSON object")

// decodeHeaderSubprotocol decodes base64url (padded or not) JSON and keeps
// its string members.
func decodeHeaderSubprotocol(enc string) (map[string]string, error) {
	if len(enc) > maxHeaderSubprotocolLen {
		return nil, errHeaderSubprotocol
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		return nil, errHeaderSubprotocol
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errHeaderSubprotocol
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out, nil
}

// verify asks authz who presented cred.
func (s *Service) verify(ctx context.Context, cred credential) (identity.Identity, *protocol.Error) {
	if cred.empty() {
		return identity.Identity{}, protocol.Unauthorized("no credentials: send an Authorization or x-api-key header")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthzTimeout)
	defer cancel()
	resp, err := bus.Request[bus.VerifyResponse](ctx, s.nc, s.subj.AuthzVerify(), bus.VerifyRequest{Token: cred.Token, APIKey: cred.APIKey}, nil)
	if err != nil {
		return identity.Identity{}, s.authzError("verify", err)
	}
	if resp.Identity.Expired(time.Now()) {
		return identity.Identity{}, protocol.Unauthorized("token expired")
	}
	if resp.Identity.Sub == "" || resp.Identity.ChannelID == "" {
		s.log.Error("authz verify returned an identity without sub or channel id")
		return identity.Identity{}, protocol.Internal("authorization service returned an incomplete identity")
	}
	return resp.Identity, nil
}

// check asks authz whether id may perform op on ch (a canonical channel
// path). A denial is an Unauthorized error carrying authz's reason.
func (s *Service) check(ctx context.Context, id identity.Identity, op, ch string) *protocol.Error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthzTimeout)
	defer cancel()
	resp, err := bus.Request[bus.CheckResponse](ctx, s.nc, s.subj.AuthzCheck(), bus.CheckRequest{Identity: id, Op: op, Channel: ch}, nil)
	if err != nil {
		return s.authzError("check", err)
	}
	if !resp.Allow {
		reason := resp.Reason
		if reason == "" {
			reason = "not allowed to " + op + " on " + ch
		}
		return protocol.Unauthorized(reason)
	}
	return nil
}

// authzError maps a failed authz request to what the client is told.
func (s *Service) authzError(op string, err error) *protocol.Error {
	var se *bus.ServiceError
	if errors.As(err, &se) {
		switch se.Status() {
		case http.StatusUnauthorized, http.StatusForbidden:
			return protocol.Unauthorized(se.Description)
		case http.StatusBadRequest:
			return protocol.BadRequest(se.Description)
		}
		s.log.Error("authz error", "op", op, "err", err)
		return protocol.Unavailable("authorization service error")
	}
	s.log.Warn("authz unavailable", "op", op, "err", err)
	return protocol.Unavailable("authorization service unavailable")
}
