package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/nats-io/nats.go"
)

// authorize asks authz whether the caller may invoke the request's model
// (its canonical id) and reports whether the request may go on. A denial
// is one forbidden error event naming the model and authz's reason; when
// authz does not answer the request fails closed with internal_error.
// Allow decisions are cached per replica (see [decisions]).
func (s *Service) authorize(ctx context.Context, j *job) bool {
	model := j.v.model.ID
	key := decisionKey(j.who, model)
	now := time.Now()
	// An expired credential is always asked about: authz decides with its
	// clock skew allowance.
	if !j.who.Expired(now) && s.allowed.get(key, now) {
		return true
	}
	gen := s.allowed.generation()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthzTimeout)
	defer cancel()
	resp, err := bus.Request[bus.CheckResponse](ctx, s.nc, s.subj.AuthzCheck(),
		bus.ModelCheckRequest{Identity: j.who, Op: bus.OpInvoke, Model: model}, nil)
	if err != nil {
		j.log.Warn("model authorization failed", "err", err)
		j.em.fail(bus.ErrTypeInternal, "authorization is unavailable; try again", nil)
		return false
	}
	if !resp.Allow {
		reason := resp.Reason
		if reason == "" {
			reason = "denied by policy"
		}
		j.log.Info("model refused", "reason", reason)
		j.em.fail(bus.ErrTypeForbidden, fmt.Sprintf("you may not use model %s: %s", model, reason),
			map[string]any{"model": model})
		return false
	}
	expires := now.Add(DecisionCacheTTL)
	if !j.who.ExpiresAt.IsZero() && j.who.ExpiresAt.Before(expires) {
		expires = j.who.ExpiresAt
	}
	s.allowed.put(key, decision{keyID: j.who.KeyID, sub: j.who.Sub, issuer: j.who.Issuer, expires: expires}, gen, now)
	return true
}

// decisionKey joins everything an invoke decision depends on: the
// caller's kind, issuer, sub, API key id, plan, tenant and groups, and the
// model. Separators are control characters, which none of them contains
// (authz refuses such model ids, and identities come from verified claims).
func decisionKey(id identity.Identity, model string) string {
	var b strings.Builder
	n := len(id.Kind) + len(id.Issuer) + len(id.Sub) + len(id.KeyID) + len(id.Plan) + len(id.Tenant) + len(model) + 8
	for _, g := range id.Groups {
		n += len(g) + 1
	}
	b.Grow(n)
	for _, part := range []string{string(id.Kind), id.Issuer, id.Sub, id.KeyID, id.Plan, id.Tenant} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	for _, g := range id.Groups {
		b.WriteString(g)
		b.WriteByte(1)
	}
	b.WriteByte(0)
	b.WriteString(model)
	return b.String()
}

// decision is a cached allow: who it was for (to match revocations) and
// when it stops counting.
type decision struct {
	keyID, sub, issuer string
	expires            time.Time
}

// decisions caches allow decisions of authz for at most
// [DecisionCacheTTL] (never past the caller's credential expiry) and at
// most [MaxCachedDecisions] entries. Denials are not cached, so a policy
// that grants more takes effect at once. A revocation drops the matching
// entries and moves the generation, so a check that was in flight when
// the revocation arrived does not store its (stale) answer. Its methods
// are safe for concurrent use.
type decisions struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]decision
	max int
}

func newDecisions(maxEntries int) *decisions {
	return &decisions{m: make(map[string]decision), max: maxEntries}
}

// get reports whether key holds an allow that is still fresh at now.
func (d *decisions) get(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[key]
	if !ok {
		return false
	}
	if !now.Before(e.expires) {
		delete(d.m, key)
		return false
	}
	return true
}

// generation returns the revocation generation; pass it to put.
func (d *decisions) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// put stores an allow unless a revocation arrived since gen was read. When
// the cache is full it first drops expired entries, then arbitrary ones.
func (d *decisions) put(key string, e decision, gen uint64, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen || d.max < 1 {
		return
	}
	if _, ok := d.m[key]; !ok && len(d.m) >= d.max {
		for k, old := range d.m {
			if !now.Before(old.expires) {
				delete(d.m, k)
			}
		}
		for k := range d.m {
			if len(d.m) < d.max {
				break
			}
			delete(d.m, k)
		}
	}
	d.m[key] = e
}

// revoke drops the entries of an API key (keyID set) or of a user (sub,
// and issuer when set) and returns how many it dropped.
func (d *decisions) revoke(keyID, sub, issuer string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	n := 0
	for k, e := range d.m {
		var match bool
		if keyID != "" {
			match = e.keyID == keyID
		} else {
			match = e.sub == sub && (issuer == "" || e.issuer == issuer)
		}
		if match {
			delete(d.m, k)
			n++
		}
	}
	return n
}

// clear drops every entry.
func (d *decisions) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	clear(d.m)
}

// len returns the number of cached entries, fresh or not.
func (d *decisions) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

// onRevoked applies a [bus.Revocation] to the decision cache.
func (s *Service) onRevoked(m *nats.Msg) {
	var r bus.Revocation
	if err := json.Unmarshal(m.Data, &r); err != nil {
		s.log.Warn("bad revocation message; dropping every cached model decision", "err", err)
		s.allowed.clear()
		return
	}
	if (r.KeyID == "") == (r.Sub == "") {
		s.log.Warn("revocation must set exactly one of keyId and sub; dropping every cached model decision", "key_id", r.KeyID, "sub", r.Sub)
		s.allowed.clear()
		return
	}
	n := s.allowed.revoke(r.KeyID, r.Sub, r.Issuer)
	s.log.Info("revocation applied to model decisions", "key_id", r.KeyID, "sub", r.Sub, "iss", r.Issuer, "dropped", n)
}
