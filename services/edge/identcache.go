package edge

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// Limits of the identity cache of HTTP callers.
const (
	// IdentityCacheTTL is the longest an HTTP caller's verified identity,
	// and the authz decisions made for it, are reused without asking authz
	// again. An entry also ends at the identity's expiry, and every entry
	// is dropped when a revocation arrives.
	IdentityCacheTTL = 30 * time.Second
	// MaxIdentityCache bounds how many credentials the cache holds; when it
	// is full the entry closest to expiry among a few is evicted.
	MaxIdentityCache = 4096
	// maxEntryDecisions bounds the authz decisions one cached identity
	// keeps; they are cleared when full.
	maxEntryDecisions = 16
	// evictSample is how many entries a full cache looks at to pick one to
	// evict.
	evictSample = 8
)

// credKey is the SHA-256 of a credential: the cache never holds the
// credential itself.
type credKey [sha256.Size]byte

func keyOf(c credential) credKey {
	h := sha256.New()
	if c.Token != "" {
		h.Write([]byte{'t'})
		h.Write([]byte(c.Token))
	} else {
		h.Write([]byte{'k'})
		h.Write([]byte(c.APIKey))
	}
	var k credKey
	h.Sum(k[:0])
	return k
}

// identEntry is one verified credential.
type identEntry struct {
	id        identity.Identity
	expires   time.Time
	decisions map[string]*protocol.Error // nil value = allowed
}

// identCache remembers the identities (and authz decisions) of HTTP
// callers, keyed by a hash of the credential. Revocations clear it: a
// result fetched while a revocation arrived is not stored (generation).
type identCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by clear
	entries map[credKey]*identEntry
	max     int
}

func newIdentCache(max int) *identCache {
	return &identCache{entries: make(map[credKey]*identEntry), max: max}
}

// generation is read before asking authz and handed back to put.
func (c *identCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the identity cached for k, if it has not expired at now.
func (c *identCache) get(k credKey, now time.Time) (identity.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return identity.Identity{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, k)
		return identity.Identity{}, false
	}
	return e.id, true
}

// put stores id for k until IdentityCacheTTL from now or the identity's
// expiry, whichever is first, unless the cache was cleared since gen.
func (c *identCache) put(k credKey, id identity.Identity, gen uint64, now time.Time) {
	expires := now.Add(IdentityCacheTTL)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt
	}
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = &identEntry{id: id, expires: expires}
}

// evict removes an expired entry or, failing that, the one closest to
// expiry among the first evictSample of the map's (random) order. c.mu is
// held.
func (c *identCache) evict(now time.Time) {
	var victim credKey
	var soonest time.Time
	n := 0
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			victim = k
			break
		}
		if n == 0 || e.expires.Before(soonest) {
			victim, soonest = k, e.expires
		}
		if n++; n >= evictSample {
			break
		}
	}
	delete(c.entries, victim)
}

// decision returns the cached decision for key under credential k.
func (c *identCache) decision(k credKey, key string, now time.Time) (perr *protocol.Error, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[k]
	if !found || !now.Before(e.expires) {
		return nil, false
	}
	perr, ok = e.decisions[key]
	return perr, ok
}

// putDecision remembers a decision for credential k, if its identity is
// still cached and the cache was not cleared since gen.
func (c *identCache) putDecision(k credKey, key string, perr *protocol.Error, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || gen != c.gen {
		return
	}
	if e.decisions == nil || len(e.decisions) >= maxEntryDecisions {
		e.decisions = make(map[string]*protocol.Error, 1)
	}
	e.decisions[key] = perr
}

// clear drops every entry and makes in-flight puts no-ops.
func (c *identCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

func (c *identCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// httpCaller is a verified HTTP caller: its identity, and the key under
// which its identity and decisions are cached.
type httpCaller struct {
	id  identity.Identity
	key credKey
}

// verifyHTTP verifies an HTTP request's credential, from the identity
// cache when it holds an unexpired entry.
func (s *Service) verifyHTTP(ctx context.Context, cred credential) (httpCaller, *protocol.Error) {
	if cred.empty() {
		_, perr := s.verify(ctx, cred)
		return httpCaller{}, perr
	}
	k := keyOf(cred)
	now := time.Now()
	if id, ok := s.idents.get(k, now); ok {
		return httpCaller{id: id, key: k}, nil
	}
	gen := s.idents.generation()
	id, perr := s.verify(ctx, cred)
	if perr != nil {
		return httpCaller{}, perr
	}
	s.idents.put(k, id, gen, time.Now())
	return httpCaller{id: id, key: k}, nil
}

// checkHTTP is [Service.check] for a caller of verifyHTTP: allows and
// denials are cached with the caller's identity; failures are not.
func (s *Service) checkHTTP(ctx context.Context, c httpCaller, op, ch string) *protocol.Error {
	key := op + "\x00" + ch
	if perr, ok := s.idents.decision(c.key, key, time.Now()); ok {
		return perr
	}
	gen := s.idents.generation()
	perr := s.check(ctx, c.id, op, ch)
	if perr != nil && perr.ErrorType != protocol.ErrTypeUnauthorized {
		return perr // failures are not decisions: do not cache them
	}
	s.idents.putDecision(c.key, key, perr, gen)
	return perr
}
