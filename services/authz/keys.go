package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/keystore"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Limits of API key fields.
const (
	// MaxKeyNameBytes bounds an API key's name.
	MaxKeyNameBytes = 128
	// MaxKeyScopes bounds a key's model and namespace lists.
	MaxKeyScopes = 64
	// MaxRevokeReasonBytes bounds a revocation reason.
	MaxRevokeReasonBytes = 256
	// KeyStoreTimeout bounds one key store operation.
	KeyStoreTimeout = 5 * time.Second
)

// APIKeyPrefix starts every API key Gatehouse issues.
const APIKeyPrefix = keystore.Prefix

// lastUsed collects last-use times until they are flushed. Lock order: mu only.
type lastUsed struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (l *lastUsed) mark(id string, at time.Time) {
	l.mu.Lock()
	if l.used == nil {
		l.used = make(map[string]time.Time)
	}
	if at.After(l.used[id]) {
		l.used[id] = at
	}
	l.mu.Unlock()
}

func (l *lastUsed) take() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.used
	l.used = nil
	return u
}

// flushLastUsed writes pending last-use times; on failure they are kept
// for the next flush.
func (s *Service) flushLastUsed(ctx context.Context) {
	st := s.keyStore()
	if st == nil {
		return
	}
	used := s.used.take()
	if len(used) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
	defer cancel()
	if err := st.TouchLastUsed(ctx, used); err != nil {
		s.log.Warn("recording API key last use failed", "err", err, "keys", len(used))
		for id, at := range used {
			s.used.mark(id, at)
		}
	}
}

func (s *Service) keyStore() keystore.Store {
	s.storeMu.RLock()
	defer s.storeMu.RUnlock()
	return s.store
}

// record returns key id's record from the cache or the store.
func (s *Service) record(ctx context.Context, id string) (keystore.Record, error) {
	now := s.now()
	if r, ok := s.records.Get(id, now); ok {
		return r, nil
	}
	if _, ok := s.missing.Get(id, now); ok {
		return keystore.Record{}, fmt.Errorf("%w: %s", keystore.ErrNotFound, id)
	}
	st := s.keyStore()
	if st == nil {
		return keystore.Record{}, verifier.ErrAPIKeysDisabled
	}
	ctx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
	defer cancel()
	r, err := st.Get(ctx, id)
	if errors.Is(err, keystore.ErrNotFound) {
		// Ids are random and made only by create, so an id that is not
		// stored now never will be: remember that, sparing the database a
		// client retrying a wrong key.
		s.missing.Put(id, struct{}{}, now.Add(KeyCacheMaxAge), now)
	}
	if err != nil {
		return keystore.Record{}, err
	}
	s.records.Put(id, r, now.Add(KeyCacheMaxAge), now)
	return r, nil
}

// verifyAPIKey turns an API key into the identity of its owner.
func (s *Service) verifyAPIKey(ctx context.Context, key string) (verified, error) {
	key = strings.TrimSpace(key)
	if s.keyStore() == nil {
		return verified{}, &verifier.Refusal{Err: verifier.ErrAPIKeysDisabled, Reason: "API keys are not enabled on this gateway"}
	}
	id, err := keystore.Parse(key)
	if err != nil {
		return verified{}, &verifier.Refusal{Err: verifier.ErrMalformed, Reason: "API key is malformed: " + strings.TrimPrefix(err.Error(), keystore.ErrMalformedKey.Error()+": ")}
	}
	r, err := s.record(ctx, id)
	if errors.Is(err, keystore.ErrNotFound) {
		return verified{}, &verifier.Refusal{Err: verifier.ErrUnknownKey, Reason: "API key is not valid"}
	}
	if err != nil {
		return verified{}, err
	}
	if !keystore.Matches(key, r.Hash) {
		return verified{}, &verifier.Refusal{Err: verifier.ErrUnknownKey, Reason: "API key is not valid"}
	}
	now := s.now()
	if !r.RevokedAt.IsZero() {
		return verified{}, &verifier.Refusal{Err: verifier.ErrRevoked, Reason: "API key was revoked at " + r.RevokedAt.UTC().Format(time.RFC3339)}
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return verified{}, &verifier.Refusal{Err: verifier.ErrExpired, Reason: "API key expired at " + r.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	s.used.mark(r.ID, now)
	ident := keyIdentity(r)
	reply, err := json.Marshal(bus.VerifyResponse{Identity: ident})
	if err != nil {
		return verified{}, fmt.Errorf("authz: encode identity: %w", err)
	}
	return verified{id: ident, reply: reply}, nil
}

// keyIdentity is the identity an API key acts as: its owner's, so the
// owner's channels are the key's channels.
func keyIdentity(r keystore.Record) identity.Identity {
	return identity.Identity{
		Sub:       r.Owner,
		Issuer:    r.Issuer,
		Tenant:    r.Tenant,
		Plan:      r.Plan,
		Groups:    slices.Clone(r.Groups),
		ChannelID: identity.ChannelIDFor(r.Issuer, r.Owner),
		Kind:      identity.KindAPIKey,
		KeyID:     r.ID,
		ExpiresAt: r.ExpiresAt,
	}
}

// keyScope checks an API key identity against its key's current record: the
// key must still be valid, and ns (when not "") one of its namespaces.
// It returns the key's model list for invoke checks.
func (s *Service) keyScope(ctx context.Context, id identity.Identity, ns string) (models []string, denial string, err error) {
	if id.Kind != identity.KindAPIKey {
		return nil, "", nil
	}
	if id.KeyID == "" {
		return nil, "the API key identity carries no key id", nil
	}
	r, err := s.record(ctx, id.KeyID)
	if errors.Is(err, keystore.ErrNotFound) || errors.Is(err, verifier.ErrAPIKeysDisabled) {
		return nil, "API key " + clipText(id.KeyID) + " is not valid", nil
	}
	if err != nil {
		return nil, "", err
	}
	if !r.RevokedAt.IsZero() {
		return nil, "API key " + r.ID + " was revoked", nil
	}
	if !r.ExpiresAt.IsZero() && !s.now().Before(r.ExpiresAt) {
		return nil, "API key " + r.ID + " expired", nil
	}
	if ns != "" && r.Namespaces != nil && !slices.Contains(r.Namespaces, ns) {
		return nil, fmt.Sprintf("namespace %s is outside the API key's scope (%s)", ns, strings.Join(r.Namespaces, ", ")), nil
	}
	if r.Models == nil {
		return nil, "", nil
	}
	return r.Models, "", nil
}

// mayManageKeys reports whether caller may create, list and revoke keys:
// Gatehouse services and admin tools on the bus, and members of the admin
// group (whose identity the edge verified). An API key never may: a leaked
// key must not mint more keys.
func (s *Service) mayManageKeys(caller identity.Identity) bool {
	if caller.Sub == "" {
		return false
	}
	if caller.Kind == identity.KindService {
		return true
	}
	return caller.Kind == identity.KindUser && caller.InGroup(s.cfg.AdminGroup) && !caller.Expired(s.now())
}

func (s *Service) keysAllowed(r micro.Request, caller identity.Identity) (keystore.Store, bool) {
	if !s.mayManageKeys(caller) {
		_ = r.Error(bus.CodeForbidden, "managing API keys needs membership of group "+s.cfg.AdminGroup, nil)
		return nil, false
	}
	st := s.keyStore()
	if st == nil {
		_ = r.Error(bus.CodeUnavailable, "API keys are not enabled on this gateway (no key database configured)", nil)
		return nil, false
	}
	return st, true
}

func (s *Service) handleKeysCreate(ctx context.Context, r micro.Request) {
	var req bus.KeyCreateRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error(bus.CodeBadRequest, "malformed key create request: "+err.Error(), nil)
		return
	}
	st, ok := s.keysAllowed(r, req.Caller)
	if !ok {
		return
	}
	if err := validateKeyRequest(req); err != nil {
		_ = r.Error(bus.CodeBadRequest, err.Error(), nil)
		return
	}
	id, secret, hash, err := keystore.Generate()
	if err != nil {
		_ = r.Error(bus.CodeInternal, "generating a key failed", nil)
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	rec := keystore.Record{Hash: hash, APIKey: bus.APIKey{
		ID: id, Name: req.Name, Owner: req.Owner, Issuer: req.Issuer, Tenant: req.Tenant, Plan: req.Plan,
		Groups: req.Groups, Models: req.Models, Namespaces: req.Namespaces,
		CreatedBy: req.Caller.Sub, CreatedAt: now,
	}}
	if rec.Issuer == "" {
		rec.Issuer = s.dev.Issuer()
	}
	if req.TTL > 0 {
		rec.ExpiresAt = now.Add(req.TTL)
	}
	sctx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
	defer cancel()
	if err := st.Create(sctx, rec); err != nil {
		s.log.Error("storing API key failed", "err", err)
		_ = r.Error(bus.CodeInternal, "storing the key failed", nil)
		return
	}
	s.log.Info("API key created", "key", id, "owner", rec.Owner, "by", req.Caller.Sub)
	bus.Respond(r, bus.KeyCreateResponse{Key: rec.APIKey, Secret: secret})
}

// validateKeyRequest checks every field of a create request against its limit.
func validateKeyRequest(req bus.KeyCreateRequest) error {
	if req.Owner == "" || len(req.Owner) > verifier.MaxClaimBytes {
		return fmt.Errorf("owner is required, 1 to %d bytes", verifier.MaxClaimBytes)
	}
	if len(req.Name) > MaxKeyNameBytes {
		return fmt.Errorf("name is longer than %d bytes", MaxKeyNameBytes)
	}
	if len(req.Tenant) > verifier.MaxClaimBytes || len(req.Plan) > verifier.MaxClaimBytes {
		return fmt.Errorf("tenant and plan are limited to %d bytes", verifier.MaxClaimBytes)
	}
	if req.Issuer != "" {
		if err := validIssuerURL(req.Issuer); err != nil {
			return fmt.Errorf("issuer: %v", err)
		}
	}
	if len(req.Groups) > verifier.MaxGroups {
		return fmt.Errorf("groups: %d, at most %d", len(req.Groups), verifier.MaxGroups)
	}
	for _, g := range req.Groups {
		if g == "" || len(g) > verifier.MaxClaimBytes || strings.ContainsFunc(g, func(c rune) bool { return c <= ' ' }) {
			return fmt.Errorf("groups: %q must be 1 to %d bytes without spaces", clipText(g), verifier.MaxClaimBytes)
		}
	}
	if len(req.Models) > MaxKeyScopes || len(req.Namespaces) > MaxKeyScopes {
		return fmt.Errorf("models and namespaces: at most %d each", MaxKeyScopes)
	}
	for _, m := range req.Models {
		if err := validModelPattern(m); err != nil {
			return fmt.Errorf("models: %v", err)
		}
	}
	for _, ns := range req.Namespaces {
		if !channel.ValidSegment(ns) {
			return fmt.Errorf("namespaces: %q is not a channel namespace", clipText(ns))
		}
	}
	if req.TTL < 0 || req.TTL > MaxKeyTTL {
		return fmt.Errorf("ttl %v must be between 0 (no expiry) and %v", req.TTL, MaxKeyTTL)
	}
	return nil
}

func (s *Service) handleKeysList(ctx context.Context, r micro.Request) {
	var req bus.KeyListRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error(bus.CodeBadRequest, "malformed key list request: "+err.Error(), nil)
		return
	}
	st, ok := s.keysAllowed(r, req.Caller)
	if !ok {
		return
	}
	if len(req.Owner) > verifier.MaxClaimBytes {
		_ = r.Error(bus.CodeBadRequest, fmt.Sprintf("owner is longer than %d bytes", verifier.MaxClaimBytes), nil)
		return
	}
	s.flushLastUsed(ctx) // this replica's pending uses show at once
	sctx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
	defer cancel()
	recs, err := st.List(sctx, keystore.Filter{Owner: req.Owner, IncludeRevoked: req.IncludeRevoked})
	if err != nil {
		s.log.Error("listing API keys failed", "err", err)
		_ = r.Error(bus.CodeInternal, "listing keys failed", nil)
		return
	}
	resp := bus.KeyListResponse{Keys: make([]bus.APIKey, 0, len(recs))}
	for _, rec := range recs {
		resp.Keys = append(resp.Keys, rec.APIKey)
	}
	bus.Respond(r, resp)
}

func (s *Service) handleKeysRevoke(ctx context.Context, r micro.Request) {
	var req bus.KeyRevokeRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error(bus.CodeBadRequest, "malformed key revoke request: "+err.Error(), nil)
		return
	}
	st, ok := s.keysAllowed(r, req.Caller)
	if !ok {
		return
	}
	if !keystore.ValidID(req.ID) {
		_ = r.Error(bus.CodeBadRequest, "id "+strings.ToValidUTF8(clipText(req.ID), "?")+" is not an API key id", nil)
		return
	}
	if len(req.Reason) > MaxRevokeReasonBytes {
		_ = r.Error(bus.CodeBadRequest, fmt.Sprintf("reason is longer than %d bytes", MaxRevokeReasonBytes), nil)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
	defer cancel()
	rec, err := st.Revoke(sctx, req.ID, req.Reason, s.now())
	if errors.Is(err, keystore.ErrNotFound) {
		_ = r.Error(bus.CodeNotFound, "no API key "+req.ID, nil)
		return
	}
	if err != nil {
		s.log.Error("revoking API key failed", "err", err)
		_ = r.Error(bus.CodeInternal, "revoking the key failed", nil)
		return
	}
	s.records.Delete(rec.ID)
	if err := s.broadcastRevocation(bus.Revocation{KeyID: rec.ID, Reason: rec.RevokeReason, RevokedAt: rec.RevokedAt}); err != nil {
		// The key is revoked in the database; replicas still drop it within
		// KeyCacheMaxAge. Tell the caller so they can retry the broadcast.
		s.log.Error("revocation broadcast failed", "key", rec.ID, "err", err)
		_ = r.Error(bus.CodeUnavailable, "the key is revoked but the broadcast to edges failed; revoke again to retry", nil)
		return
	}
	s.log.Info("API key revoked", "key", rec.ID, "by", req.Caller.Sub)
	bus.Respond(r, bus.KeyRevokeResponse{Key: rec.APIKey})
}

// broadcastRevocation publishes rev to every edge and authz replica and
// flushes, so it is on the server when this returns.
func (s *Service) broadcastRevocation(rev bus.Revocation) error {
	data, err := json.Marshal(rev)
	if err != nil {
		return err
	}
	if err := s.nc.Publish(s.subj.AuthzRevoked(), data); err != nil {
		return err
	}
	return s.nc.FlushTimeout(KeyStoreTimeout)
}

// onRevocation drops what this replica cached for a revoked credential.
func (s *Service) onRevocation(m *nats.Msg) {
	var rev bus.Revocation
	if err := json.Unmarshal(m.Data, &rev); err != nil {
		s.log.Warn("malformed revocation broadcast", "err", err)
		return
	}
	if rev.KeyID != "" {
		s.records.Delete(rev.KeyID)
	}
	if rev.Sub != "" {
		s.cache.DeleteFunc(func(v verified) bool {
			return v.id.Sub == rev.Sub && (rev.Issuer == "" || v.id.Issuer == rev.Issuer)
		})
	}
}

func (s *Service) handleJWKS(_ context.Context, r micro.Request) {
	jwks, err := s.dev.JWKS()
	if err != nil {
		_ = r.Error(bus.CodeInternal, "encoding the key set failed", nil)
		return
	}
	bus.Respond(r, bus.JWKSResponse{Issuer: s.dev.Issuer(), JWKS: jwks})
}
