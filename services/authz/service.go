package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/keystore"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/tokencache"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Micro service identity.
const (
	// ServiceName is the nats.go micro service name.
	ServiceName = "gatehouse-authz"
	// ServiceVersion is the micro service version (semver).
	ServiceVersion = "0.1.0"
)

// Service is the authz service. Create it with [New] and start it with
// [Service.Run]. Its endpoints are safe for concurrent use.
type Service struct {
	cfg    Config
	nc     *nats.Conn
	log    *slog.Logger
	subj   bus.Subjects
	dev    *DevIssuer
	tokens verifier.Verifier // bearer tokens
	cache  *tokencache.Cache[verified]
	now    func() time.Time

	// records caches API key records by id; revocations delete entries.
	records *tokencache.Cache[keystore.Record]
	missing *tokencache.Cache[struct{}] // key ids known not to exist
	used    lastUsed
	storeMu sync.RWMutex
	store   keystore.Store // nil until Run opened it, or when keys are disabled

	started atomic.Bool
	gate    gate
}

// verified is a cached verification: the identity and its encoded reply.
type verified struct {
	id    identity.Identity
	reply []byte
}

// New validates cfg, loads or creates the dev issuer's key in cfg.DataDir
// and returns a service ready to [Service.Run]. It starts no goroutines.
func New(cfg Config, nc *nats.Conn) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	cfg.Policy = cfg.Policy.clone()
	dev, err := LoadOrCreateDevIssuer(cfg.DataDir, cfg.DevIssuerURL, cfg.Audience)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		nc:      nc,
		log:     cfg.Logger.With("svc", "authz"),
		subj:    bus.NewSubjects(cfg.Prefix),
		dev:     dev,
		cache:   tokencache.New[verified](VerifyCacheSize, VerifyCacheMaxAge),
		records: tokencache.New[keystore.Record](KeyCacheSize, KeyCacheMaxAge),
		missing: tokencache.New[struct{}](KeyCacheSize, KeyCacheMaxAge),
		now:     time.Now,
	}
	cfg.Models = cfg.Models.clone()
	external, err := buildIssuers(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.tokens, err = verifier.NewJWT(verifier.JWTConfig{
		Issuers:   append([]verifier.Issuer{{URL: dev.Issuer(), Keys: dev.keySet()}}, external...),
		Audience:  cfg.Audience,
		ClockSkew: cfg.ClockSkew,
		Now:       func() time.Time { return s.now() }, // one clock for cache and verifier
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return s, nil
}

// DevIssuer returns the service's development issuer, for serving its
// JWKS or minting tokens in `gatehouse dev`.
func (s *Service) DevIssuer() *DevIssuer { return s.dev }

// Run opens the API key store (when configured), subscribes to revocation
// broadcasts and serves the verify, check, key management and JWKS
// endpoints as the micro service [ServiceName] in queue group
// [bus.QueueAuthz] until ctx ends. Then it stops the service, waits for
// requests in progress, writes pending key last-use times, closes the
// store and returns nil. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	// Requests already taken off the wire finish even while Run stops.
	reqCtx := context.WithoutCancel(ctx)
	if s.cfg.DatabaseURL != "" || s.cfg.SQLitePath != "" {
		octx, cancel := context.WithTimeout(ctx, KeyStoreTimeout)
		st, err := keystore.Open(octx, s.cfg.DatabaseURL, s.cfg.SQLitePath)
		cancel()
		if err != nil {
			return fmt.Errorf("authz: API key store: %w", err)
		}
		s.storeMu.Lock()
		s.store = st
		s.storeMu.Unlock()
		defer func() {
			s.flushLastUsed(reqCtx)
			s.storeMu.Lock()
			s.store = nil
			s.storeMu.Unlock()
			if err := st.Close(); err != nil {
				s.log.Warn("closing the API key store", "err", err)
			}
		}()
	}
	revSub, err := s.nc.Subscribe(s.subj.AuthzRevoked(), s.onRevocation)
	if err != nil {
		return fmt.Errorf("authz: subscribe to revocations: %w", err)
	}
	defer func() { _ = revSub.Unsubscribe() }()
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "Gatehouse credentials and channel policy",
		QueueGroup:  bus.QueueAuthz,
	})
	if err != nil {
		return fmt.Errorf("authz: add micro service: %w", err)
	}
	endpoints := []struct {
		name, subject string
		handle        func(context.Context, micro.Request)
	}{
		{"verify", s.subj.AuthzVerify(), s.handleVerify},
		{"check", s.subj.AuthzCheck(), s.handleCheck},
		{"keys-create", s.subj.AuthzKeysCreate(), s.handleKeysCreate},
		{"keys-list", s.subj.AuthzKeysList(), s.handleKeysList},
		{"keys-revoke", s.subj.AuthzKeysRevoke(), s.handleKeysRevoke},
		{"jwks", s.subj.AuthzJWKS(), s.handleJWKS},
	}
	for _, e := range endpoints {
		handle := e.handle
		h := bus.TraceHandler(reqCtx, "authz", e.name, func(ctx context.Context, r micro.Request) {
			if !s.gate.enter() {
				_ = r.Error(bus.CodeUnavailable, "authz is shutting down", nil)
				return
			}
			defer s.gate.leave()
			handle(ctx, r)
		})
		if err := svc.AddEndpoint(e.name, h, micro.WithEndpointSubject(e.subject)); err != nil {
			_ = svc.Stop()
			return fmt.Errorf("authz: add endpoint %s: %w", e.name, err)
		}
	}
	s.log.Info("authz serving", "verify", s.subj.AuthzVerify(), "check", s.subj.AuthzCheck(),
		"dev_issuer", s.dev.Issuer(), "kid", s.dev.KeyID(), "audience", s.cfg.Audience)

	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(s.cfg.KeyLastUsedFlush)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.flushLastUsed(reqCtx)
			}
		}
	}()

	<-ctx.Done()
	<-flushDone
	err = svc.Stop()
	s.gate.close()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("authz: stop: %w", err)
	}
	s.log.Info("authz stopped")
	return nil
}

func (s *Service) handleVerify(ctx context.Context, r micro.Request) {
	var req bus.VerifyRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error(bus.CodeBadRequest, "malformed verify request: "+err.Error(), nil)
		return
	}
	v, err := s.verify(ctx, req)
	if err != nil {
		var ref *verifier.Refusal
		switch {
		case errors.Is(err, errBothCredentials):
			_ = r.Error(bus.CodeBadRequest, err.Error(), nil)
		case errors.As(err, &ref):
			s.log.Debug("credential refused", "reason", ref.Reason)
			_ = r.Error(bus.CodeUnauthorized, ref.Reason, nil)
		default:
			s.log.Error("verify failed", "err", err)
			_ = r.Error(bus.CodeInternal, "credential verification failed", nil)
		}
		return
	}
	_ = r.Respond(v.reply)
}

// errBothCredentials is a verify request carrying a token and an API key.
var errBothCredentials = errors.New("give either a token or an API key, not both")

// verify verifies the credential of req, answering from the cache when the
// same token was verified before and has not expired.
func (s *Service) verify(ctx context.Context, req bus.VerifyRequest) (verified, error) {
	token := verifier.TrimBearer(req.Token)
	switch {
	case token != "" && req.APIKey != "":
		return verified{}, errBothCredentials
	case req.APIKey != "":
		return s.verifyAPIKey(ctx, req.APIKey)
	}
	now := s.now()
	if v, ok := s.cache.Get(token, now); ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()
	id, err := s.tokens.Verify(ctx, token)
	if err != nil {
		return verified{}, err
	}
	reply, err := json.Marshal(bus.VerifyResponse{Identity: id})
	if err != nil {
		return verified{}, fmt.Errorf("authz: encode identity: %w", err)
	}
	v := verified{id: id, reply: reply}
	s.cache.Put(token, v, id.ExpiresAt, now)
	return v, nil
}

func (s *Service) handleCheck(ctx context.Context, r micro.Request) {
	// One decode serves both shapes: CheckRequest and ModelCheckRequest
	// share identity and op.
	var req struct {
		bus.CheckRequest
		Model string `json:"model"`
	}
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error(bus.CodeBadRequest, "malformed check request: "+err.Error(), nil)
		return
	}
	resp, err := s.decide(ctx, req.CheckRequest, req.Model)
	if err != nil {
		if errors.Is(err, errBadOp) {
			_ = r.Error(bus.CodeBadRequest, err.Error(), nil)
			return
		}
		s.log.Error("check failed", "err", err)
		_ = r.Error(bus.CodeInternal, "checking the API key failed", nil)
		return
	}
	if !resp.Allow {
		s.log.Debug("check denied", "op", req.Op, "cid", req.Identity.ChannelID, "reason", resp.Reason)
	}
	bus.Respond(r, resp)
}

// decide answers a channel or model check, applying an API key's scopes.
func (s *Service) decide(ctx context.Context, req bus.CheckRequest, model string) (bus.CheckResponse, error) {
	now := s.now()
	if req.Op == bus.OpInvoke {
		keyModels, denial, err := s.keyScope(ctx, req.Identity, "")
		if err != nil || denial != "" {
			return deny(denial), err
		}
		return s.cfg.Models.decideModel(req.Identity, model, keyModels, now, s.cfg.ClockSkew), nil
	}
	resp, err := s.cfg.Policy.decide(req, now, s.cfg.ClockSkew)
	if err != nil || !resp.Allow || req.Identity.Kind != identity.KindAPIKey {
		return resp, err
	}
	ch, err := channel.ParsePattern(req.Channel)
	if err != nil { // decide allowed it, so it parsed
		return deny(err.Error()), nil
	}
	_, denial, err := s.keyScope(ctx, req.Identity, ch.Namespace())
	if err != nil || denial != "" {
		return deny(denial), err
	}
	return resp, nil
}

// gate tracks handlers in progress so that Run returns only after the last
// one finished; once closed it admits no more. Lock order: mu only.
type gate struct {
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

func (g *gate) enter() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *gate) leave() { g.wg.Done() }

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
