package edge

import (
	"fmt"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// identityKey names a caller for the per-identity connection limit and for
// revocation: the API key id for API keys, otherwise issuer and sub.
func identityKey(id identity.Identity) string {
	if id.KeyID != "" {
		return "key\x00" + id.KeyID
	}
	return "sub\x00" + id.Issuer + "\x00" + id.Sub
}

// admitResult says what [Service.register] decided.
type admitResult uint8

const (
	admitted       admitResult = iota
	admitDraining              // the service is shutting down
	admitFull                  // MaxConnections reached
	admitPerIdent              // MaxConnectionsPerIdentity reached for this caller
	admitUntracked             // admitted without an identity (authentication failed)
)

// register adds c to the live sockets and counts it against the limits. A
// socket refused for its identity is still registered (it must be closed
// through the protocol), but not counted for that identity.
func (s *Service) register(c *conn) admitResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return admitDraining
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		return admitFull
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.metrics.connsOpen.Inc()
	s.metrics.connsAccepted.Inc()
	if c.authErr != nil {
		return admitUntracked
	}
	key := identityKey(c.ident)
	if s.perIdent[key] >= s.cfg.MaxConnectionsPerIdentity {
		return admitPerIdent
	}
	s.perIdent[key]++
	c.identKey = key
	return admitted
}

// unregister undoes a successful register.
func (s *Service) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.metrics.connsOpen.Dec()
	// The socket ended (conn.end): fail's close code and reason are set.
	s.metrics.connsClosed[closeReasonLabel(c.closeCode, c.closeReason)].Inc()
	if c.identKey != "" {
		if n := s.perIdent[c.identKey] - 1; n > 0 {
			s.perIdent[c.identKey] = n
		} else {
			delete(s.perIdent, c.identKey)
		}
	}
	s.mu.Unlock()
	s.connWG.Done()
}

// NumConnections returns how many WebSocket connections the service holds.
// It is safe to call from any goroutine.
func (s *Service) NumConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Service) perIdentityError() *protocol.Error {
	return protocol.LimitExceeded(fmt.Sprintf("too many connections for this caller: at most %d per identity", s.cfg.MaxConnectionsPerIdentity))
}

// tokenBucket limits a socket's publish rate. It is owned by the socket's
// reader.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take removes n tokens if there are that many and reports whether it did.
func (b *tokenBucket) take(n int, now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
