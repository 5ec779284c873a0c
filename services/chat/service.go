package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pullErrorPause is the pause after a failed pull before the next one, so a
// broken connection does not spin.
const pullErrorPause = 250 * time.Millisecond

// Service is the chat service. Create it with [New]; [Service.Run] consumes
// requests until its context ends. Run may be called once; a second call
// returns [ErrAlreadyRunning].
type Service struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	inbound   jetstream.Stream // set by Run before any request is handled
	subj      bus.Subjects
	log       *slog.Logger
	models    catalog
	upstreams map[string]*upstream
	flights   *registry
	allowed   *decisions
	// cacheKeys answers cache misses without asking the cache service;
	// nil with the cache or its index off.
	cacheKeys *keyindex.Index
	running   atomic.Bool
}

// New validates cfg and returns a service on nc. It starts nothing.
func New(cfg Config, nc *nats.Conn) (*Service, error) {
	if nc == nil {
		return nil, ErrNilConn
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	upstreams, err := newUpstreams(cfg)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(cfg.Providers))
	for _, p := range cfg.Providers {
		names[p.Name] = p.Type
	}
	models, err := newCatalog(cfg.Models, names)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("chat: jetstream: %w", err)
	}
	s := &Service{
		cfg:       cfg,
		nc:        nc,
		js:        js,
		subj:      bus.NewSubjects(cfg.Prefix),
		log:       cfg.Logger.With("svc", "chat"),
		models:    models,
		upstreams: upstreams,
		flights:   newRegistry(),
		allowed:   newDecisions(MaxCachedDecisions),
	}
	if !cfg.DisableCache && cfg.CacheIndexMaxKeys > 0 {
		s.cacheKeys = keyindex.New(cfg.CacheIndexMaxKeys)
	}
	return s, nil
}

// Run declares the streams and the shared durable consumer, subscribes to
// cancellations and revocations and processes requests, at most [Config.Concurrency] at a
// time, until ctx ends. It then stops pulling, lets in-flight requests
// finish for up to [Config.DrainTimeout], cancels those still running,
// waits for them and returns nil. It returns an error only when start-up
// fails for a reason other than ctx ending.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	cons, err := s.declare(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting
		}
		return err
	}
	// Helpers that run as long as Run: the cache key index and INBOUND's
	// keep markers.
	helperCtx, stopHelpers := context.WithCancel(ctx)
	var helpers sync.WaitGroup
	defer helpers.Wait()
	defer stopHelpers()
	if s.cacheKeys != nil {
		// The cache service declares the bucket; until it exists (and
		// whenever the watch fails) every lookup asks the cache service.
		helpers.Go(func() {
			s.cacheKeys.Follow(helperCtx, func(ctx context.Context) (jetstream.KeyValue, error) {
				return s.js.KeyValue(ctx, s.subj.CacheBucket())
			}, s.log.With("index", "cache keys"))
		})
	}
	if s.cfg.Streams.InboundStorage == jetstream.FileStorage {
		helpers.Go(func() { s.keepInbound(helperCtx) })
	}
	undeliveredSub, err := s.nc.QueueSubscribe(s.maxDeliveriesSubject(), bus.QueueChat, s.onUndelivered)
	if err != nil {
		return fmt.Errorf("chat: subscribe to max-deliveries advisories: %w", err)
	}
	defer func() {
		if err := undeliveredSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("unsubscribe max-deliveries advisories", "err", err)
		}
	}()
	cancelSub, err := s.nc.Subscribe(s.subj.CancelAll(), s.onCancel)
	if err != nil {
		return fmt.Errorf("chat: subscribe to cancellations: %w", err)
	}
	defer func() {
		if err := cancelSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("unsubscribe cancellations", "err", err)
		}
	}()
	revokedSub, err := s.nc.Subscribe(s.subj.AuthzRevoked(), s.onRevoked)
	if err != nil {
		return fmt.Errorf("chat: subscribe to revocations: %w", err)
	}
	defer func() {
		if err := revokedSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("unsubscribe revocations", "err", err)
		}
	}()
	modelsSvc, err := s.serveModels()
	if err != nil {
		return err
	}
	defer func() {
		if err := modelsSvc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("stop models endpoint", "err", err)
		}
	}()
	iter, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("chat: pull from %s: %w", s.subj.StreamInbound(), err)
	}
	s.log.Info("chat consuming", "stream", s.subj.StreamInbound(), "consumer", bus.ConsumerChat, "concurrency", s.cfg.Concurrency)

	// Workers run on work, which outlives ctx by the drain grace period.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var workers sync.WaitGroup
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		s.pull(ctx, work, iter, &workers)
	}()

	<-ctx.Done()
	// Requests already delivered here are never redelivered (MaxDeliver
	// is 1): stop pulling more, but run the buffered ones.
	iter.Drain()
	idle := make(chan struct{})
	go func() { <-pulled; workers.Wait(); close(idle) }()
	grace := time.NewTimer(s.cfg.DrainTimeout)
	defer grace.Stop()
	select {
	case <-idle:
	case <-grace.C:
		s.log.Warn("drain timeout: cancelling in-flight requests", "running", s.flights.running())
		cancelWork()
		// Buffered requests not started by now are answered as
		// undelivered by another replica after AckWait.
		iter.Stop()
		<-idle
	}
	s.log.Info("chat stopped")
	return nil
}

// declare creates the streams and the durable consumer.
func (s *Service) declare(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, SetupTimeout)
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.js, s.subj, s.cfg.Streams); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	inbound, err := s.js.Stream(ctx, s.subj.StreamInbound())
	if err != nil {
		return nil, fmt.Errorf("chat: stream %s: %w", s.subj.StreamInbound(), err)
	}
	s.inbound = inbound
	cons, err := s.js.CreateOrUpdateConsumer(ctx, s.subj.StreamInbound(), jetstream.ConsumerConfig{
		Durable:       bus.ConsumerChat,
		FilterSubject: s.subj.InboundAll(), // not the keep markers
		Description:   "Gatehouse chat workers (shared by all chat replicas)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.Concurrency,
		MaxDeliver:    MaxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("chat: declare consumer %s: %w", bus.ConsumerChat, err)
	}
	return cons, nil
}

// pull hands messages to workers, one slot of the semaphore each, until
// the iterator is drained or stopped, or work ends (the drain grace
// period is over). ctx ending only stops the pause after a failed pull.
func (s *Service) pull(ctx, work context.Context, iter jetstream.MessagesContext, workers *sync.WaitGroup) {
	slots := make(chan struct{}, s.cfg.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-work.Done():
			return
		}
		msg, err := iter.Next()
		if err != nil {
			<-slots
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return
			}
			s.log.Warn("pull chat request", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(pullErrorPause):
			}
			continue
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer func() { <-slots }()
			s.handle(work, msg)
		}()
	}
}

// onCancel handles a cancel on Subjects.Cancel(requestID): it is honoured
// only when the canceller's identity is the request owner's.
func (s *Service) onCancel(m *nats.Msg) {
	reqID := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	who, err := identity.Decode(m.Header.Get(bus.HeaderIdentity))
	if err != nil {
		s.log.Warn("ignoring cancel without a valid identity", "requestId", reqID, "err", err)
		return
	}
	switch s.flights.cancel(reqID, who.Subject(), time.Now()) {
	case cancelApplied:
		s.log.Info("request cancelled", "requestId", reqID, "by", who.Subject())
	case cancelNotOwner:
		s.log.Warn("ignoring cancel from someone other than the requester", "requestId", reqID, "by", who.Subject())
	case cancelDropped:
		s.log.Warn("too many pending cancels; dropping one", "requestId", reqID)
	case cancelRemembered:
	}
}
