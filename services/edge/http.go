package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
)

// Paths served by the edge.
const (
	PathRealtime = "/event/realtime"
	PathEvent    = "/event"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
)

// corsAllowHeaders are the request headers browsers may send to POST /event
// (the Amplify client sends all of them).
const corsAllowHeaders = "authorization, content-type, x-amz-user-agent, x-amz-date, x-amz-security-token, x-api-key"

// reasonServerFull is the answer to an upgrade beyond MaxConnections, and
// retryAfterFull the Retry-After (seconds) it suggests.
const (
	reasonServerFull = "server at its connection limit"
	retryAfterFull   = "5"
)

// corsMaxAge is how long (seconds) a browser may cache a preflight answer.
const corsMaxAge = "600"

func (s *Service) routes() {
	s.keysRoutes()      // keys_api.go
	s.wellKnownRoutes() // wellknown.go
	s.mux.HandleFunc("GET "+PathRealtime, s.handleRealtime)
	s.mux.HandleFunc("POST "+PathEvent, s.handlePublish)
	s.mux.HandleFunc("OPTIONS "+PathEvent, s.handlePreflight)
	s.mux.HandleFunc("POST "+PathChatCompletions, s.handleChatCompletions)
	s.mux.HandleFunc("GET "+PathModels, s.handleModels)
	s.mux.HandleFunc("GET "+PathModels+"/{model}", s.handleModel)
	s.mux.HandleFunc("GET "+PathUsage, s.handleUsage) // usage_api.go
	s.mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	if !s.cfg.DisableMetrics {
		s.mux.Handle("GET "+PathMetrics, s.metrics.handler())
	}
	s.mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.nc.IsConnected() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "nats not connected")
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
}

// handleRealtime upgrades to the AppSync Events WebSocket protocol.
func (s *Service) handleRealtime(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket (subprotocol "+Subprotocol+")", http.StatusUpgradeRequired)
		return
	}
	if s.NumConnections() >= s.cfg.MaxConnections {
		w.Header().Set("Retry-After", retryAfterFull)
		http.Error(w, reasonServerFull, http.StatusServiceUnavailable)
		return
	}
	// Verify before the upgrade so a failure can be reported on the socket
	// in the protocol's own terms (connection_error after connection_init).
	cred, authErr := upgradeCredential(r)
	var ident identity.Identity
	if authErr == nil {
		ident, authErr = s.verify(r.Context(), cred)
	}
	nc, pending, err := upgrade(w, r)
	if err != nil {
		s.log.Debug("websocket upgrade refused", "err", err)
		return
	}
	c := s.newConn(nc, pending, ident, cred, authErr)
	switch s.register(c) {
	case admitDraining:
		refuseSocket(nc, wsframe.CloseGoingAway, reasonShutdown)
		return
	case admitFull:
		refuseSocket(nc, wsframe.CloseTryAgainLater, reasonServerFull)
		return
	case admitPerIdent:
		c.limitErr = s.perIdentityError()
	}
	// The handler returns now: its stack (grown by the TLS handshake) and
	// net/http's per-request state are released, and the socket is read
	// from the poller (readers.go). It stays owned by the Service
	// (register/unregister and connWG).
	c.start()
}

// refuseSocket closes a socket that was upgraded but not admitted, with a
// close frame saying why.
func refuseSocket(nc net.Conn, code uint16, reason string) {
	_ = nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	_, _ = nc.Write(wsframe.AppendClose(nil, code, reason))
	_ = nc.Close()
}

// handlePublish implements POST /event.
func (s *Service) handlePublish(w http.ResponseWriter, r *http.Request) {
	w, r, span := startHTTPSpan(w, r, "POST "+PathEvent, PathEvent)
	defer span.End()
	if !s.cors(w, r) {
		writeErrors(w, protocol.Unauthorized("origin not allowed"), http.StatusForbidden)
		return
	}
	var body struct {
		Channel string            `json:"channel"`
		Events  []json.RawMessage `json:"events"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.ReadLimit))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErrors(w, protocol.BadRequest("request body is too large"), http.StatusRequestEntityTooLarge)
			return
		}
		writeErrors(w, protocol.BadRequest(`body must be {"channel": "/namespace/name", "events": ["<JSON string>", ...]}`), 0)
		return
	}
	ctx := r.Context()
	caller, perr := s.verifyHTTP(ctx, credentialFrom(r.Header.Get(headerAuthorization), r.Header.Get(headerAPIKey)))
	if perr != nil {
		writeErrors(w, perr, 0)
		return
	}
	id := caller.id
	ch, payloads, perr := s.validatePublish(body.Channel, body.Events != nil, body.Events)
	if perr != nil {
		writeErrors(w, perr, 0)
		return
	}
	if perr := s.checkHTTP(ctx, caller, bus.OpPublish, ch.String()); perr != nil {
		writeErrors(w, perr, 0)
		return
	}
	if !s.limitHTTPPublish(w, id, len(payloads)) {
		return
	}
	res, _, perr := s.publishEvents(context.WithoutCancel(ctx), id, ch, payloads)
	if perr != nil {
		writeErrors(w, perr, 0)
		return
	}
	s.metrics.published[transportHTTP].Add(float64(len(res.Successful)))
	writeJSON(w, http.StatusOK, res)
}

// handlePreflight answers CORS preflights for POST /event.
func (s *Service) handlePreflight(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", corsAllowHeaders)
	w.Header().Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}

// cors sets the CORS response headers for an allowed origin and reports
// whether the origin is allowed.
func (s *Service) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.originAllowed(r) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", headerErrorType)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErrors replies {"errors":[...]} with the error's status, or status
// when it is not 0.
func writeErrors(w http.ResponseWriter, e *protocol.Error, status int) {
	if status == 0 {
		status = e.Status()
	}
	// Amplify (and AWS SDKs) name the error from x-amzn-ErrorType and take
	// its text from a top-level "message"; AppSync clients read "errors".
	w.Header().Set(headerErrorType, e.ErrorType)
	writeJSON(w, status, struct {
		Errors  []*protocol.Error `json:"errors"`
		Message string            `json:"message"`
	}{[]*protocol.Error{e}, e.Message})
}

// headerErrorType carries the errorType of a failed HTTP request.
const headerErrorType = "x-amzn-ErrorType"
