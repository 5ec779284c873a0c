package edge

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
)

// Close reasons of sockets closed from the bus.
const (
	reasonRevoked      = "credentials revoked"
	reasonDisconnected = "disconnected by an operator"
	// maxCloseReason is the longest close reason a close frame carries.
	maxCloseReason = 123
)

// selector matches identities for revocation and disconnection: by API key
// id, or by sub (and issuer, when set).
type selector struct {
	keyID, sub, issuer string
}

func (m selector) valid() bool { return (m.keyID == "") != (m.sub == "") }

func (m selector) matches(id identity.Identity) bool {
	if m.keyID != "" {
		return id.KeyID == m.keyID
	}
	return id.Sub == m.sub && (m.issuer == "" || id.Issuer == m.issuer)
}

// subscribeControl subscribes to the revocation and disconnect broadcasts.
// Every edge process receives them (no queue group).
func (s *Service) subscribeControl() error {
	rev, err := s.nc.Subscribe(s.subj.AuthzRevoked(), s.handleRevoked)
	if err != nil {
		return fmt.Errorf("edge: subscribe %s: %w", s.subj.AuthzRevoked(), err)
	}
	dis, err := s.nc.Subscribe(s.subj.EdgeDisconnect(), s.handleDisconnect)
	if err != nil {
		_ = rev.Unsubscribe()
		return fmt.Errorf("edge: subscribe %s: %w", s.subj.EdgeDisconnect(), err)
	}
	s.control = []*nats.Subscription{rev, dis}
	if err := s.nc.FlushTimeout(FlushTimeout); err != nil {
		s.unsubscribeControl()
		return fmt.Errorf("edge: flush control subscriptions: %w", err)
	}
	return nil
}

func (s *Service) unsubscribeControl() {
	for _, sub := range s.control {
		_ = sub.Unsubscribe()
	}
	s.control = nil
}

// handleRevoked drops every cached identity and decision (the HTTP
// callers' cache at once; sockets clear their caches when the revocation
// epoch moves) and closes the sockets
// whose identity matches, after a connection_error naming the reason.
func (s *Service) handleRevoked(msg *nats.Msg) {
	var r bus.Revocation
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		s.log.Warn("bad revocation message", "err", err)
		return
	}
	s.applyRevocation(r)
}

// applyRevocation drops cached identities and decisions and closes the
// sockets r selects. Applying one twice (the broadcast after the edge that
// carried the revoke applied it) changes nothing more.
func (s *Service) applyRevocation(r bus.Revocation) {
	sel := selector{keyID: r.KeyID, sub: r.Sub, issuer: r.Issuer}
	if !sel.valid() {
		s.log.Warn("revocation must set exactly one of keyId and sub", "key_id", r.KeyID, "sub", r.Sub)
		return
	}
	s.idents.clear()
	s.revocations.Add(1)
	final := protocol.ConnectionError(&protocol.Error{ErrorType: protocol.ErrTypeUnauthorized, Message: reasonRevoked, ErrorCode: 401})
	n := s.closeMatching(sel, wsframe.ClosePolicyViolation, reasonRevoked, final)
	s.log.Info("revocation applied", "key_id", r.KeyID, "sub", r.Sub, "iss", r.Issuer, "reason", r.Reason, "closed", n)
}

// handleDisconnect closes the sockets a [bus.DisconnectRequest] selects and
// answers with how many it closed.
func (s *Service) handleDisconnect(msg *nats.Msg) {
	var r bus.DisconnectRequest
	closed := 0
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		s.log.Warn("bad disconnect message", "err", err)
	} else if sel := (selector{keyID: r.KeyID, sub: r.Sub, issuer: r.Issuer}); !sel.valid() {
		s.log.Warn("disconnect must set exactly one of keyId and sub", "key_id", r.KeyID, "sub", r.Sub)
	} else {
		reason := r.Reason
		if reason == "" {
			reason = reasonDisconnected
		}
		if len(reason) > maxCloseReason {
			reason = reason[:maxCloseReason]
		}
		closed = s.closeMatching(sel, wsframe.CloseGoingAway, reason, nil)
		s.log.Info("disconnect applied", "key_id", r.KeyID, "sub", r.Sub, "iss", r.Issuer, "closed", closed)
	}
	if msg.Reply != "" {
		b, _ := json.Marshal(bus.DisconnectResponse{Edge: s.id, Closed: closed})
		_ = msg.Respond(b)
	}
}

// closeMatching fails every live socket whose connection identity sel
// matches and returns how many.
func (s *Service) closeMatching(sel selector, code uint16, reason string, final []byte) int {
	s.mu.Lock()
	var victims []*conn
	for c := range s.conns {
		if c.authErr == nil && sel.matches(c.ident) {
			victims = append(victims, c)
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		c.fail(code, reason, final)
	}
	return len(victims)
}
