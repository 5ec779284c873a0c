package cache

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
	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// KeyLen is the length of a cache key: a hex SHA-256 as [bus.CacheKey]
// returns it.
const KeyLen = 64

// ErrAlreadyRunning is returned by a second call to [Service.Run].
var ErrAlreadyRunning = errors.New("cache: service is already running")

// Service is the cache service. Create it with [New]; [Service.Run] serves
// until its context ends. Run may be called once.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	subj    bus.Subjects
	log     *slog.Logger
	kv      jetstream.KeyValue
	running atomic.Bool
	// index answers misses without a KV read; nil when MaxIndexKeys < 0.
	index *keyindex.Index
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
	svc := &Service{
		cfg:  cfg,
		nc:   nc,
		subj: bus.NewSubjects(cfg.Prefix),
		log:  cfg.Logger.With("svc", "cache"),
	}
	if cfg.MaxIndexKeys > 0 {
		svc.index = keyindex.New(cfg.MaxIndexKeys)
	}
	return svc, nil
}

// Run declares the KV bucket, serves the get and put endpoints until ctx
// ends, then stops the micro service and returns nil. It returns an error
// only when start-up fails for a reason other than ctx ending.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	kv, err := s.declareBucket(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting
		}
		return err
	}
	s.kv = kv
	if s.index != nil {
		followCtx, stopFollow := context.WithCancel(ctx)
		var following sync.WaitGroup
		following.Go(func() {
			s.index.Follow(followCtx, func(context.Context) (jetstream.KeyValue, error) { return kv, nil }, s.log)
		})
		defer following.Wait()
		defer stopFollow()
	}

	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "Gatehouse exact-match response cache",
		QueueGroup:  bus.QueueCache,
	})
	if err != nil {
		return fmt.Errorf("cache: add micro service: %w", err)
	}
	endpoints := []struct {
		name, subject string
		h             func(context.Context, micro.Request)
	}{
		{"get", s.subj.CacheGet(), s.handleGet},
		{"put", s.subj.CachePut(), s.handlePut},
	}
	for _, e := range endpoints {
		h := bus.TraceHandler(context.Background(), "cache", e.name, e.h)
		if err := svc.AddEndpoint(e.name, h, micro.WithEndpointSubject(e.subject)); err != nil {
			_ = svc.Stop()
			return fmt.Errorf("cache: add endpoint %s: %w", e.subject, err)
		}
	}
	s.log.Info("cache serving", "bucket", s.subj.CacheBucket(), "ttl", s.cfg.TTL, "maxBytes", s.cfg.MaxBytes)

	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		s.log.Warn("stop micro service", "err", err)
	}
	s.log.Info("cache stopped")
	return nil
}

// declareBucket creates or updates the bucket, then switches its stream to
// discard the oldest entries when full (KV buckets refuse new writes by
// default, which is wrong for a cache).
func (s *Service) declareBucket(ctx context.Context) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultSetupTimeout)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("cache: jetstream: %w", err)
	}
	bucket := s.subj.CacheBucket()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       bucket,
		Description:  "Gatehouse response cache",
		History:      1,
		TTL:          s.cfg.TTL,
		MaxBytes:     s.cfg.MaxBytes,
		MaxValueSize: int32(s.cfg.MaxEntryBytes),
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: declare bucket %s: %w", bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("cache: look up bucket stream: %w", err)
	}
	if scfg := stream.CachedInfo().Config; scfg.Discard != jetstream.DiscardOld {
		scfg.Discard = jetstream.DiscardOld
		if _, err := js.UpdateStream(ctx, scfg); err != nil {
			return nil, fmt.Errorf("cache: set bucket discard policy: %w", err)
		}
	}
	return kv, nil
}

func (s *Service) handleGet(ctx context.Context, req micro.Request) {
	var in bus.CacheGetRequest
	if err := json.Unmarshal(req.Data(), &in); err != nil {
		_ = req.Error(bus.CodeBadRequest, "request is not a valid cache get request: "+err.Error(), nil)
		return
	}
	if err := ValidKey(in.Key); err != nil {
		_ = req.Error(bus.CodeBadRequest, "key: "+err.Error(), nil)
		return
	}
	if s.index != nil && s.index.Absent(in.Key) {
		bus.Respond(req, bus.CacheGetResponse{})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.KVTimeout)
	defer cancel()
	e, err := s.kv.Get(ctx, in.Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		bus.Respond(req, bus.CacheGetResponse{})
		return
	}
	if err != nil {
		s.invalidateIndex()
		s.log.Warn("cache get failed", "err", err)
		_ = req.Error(kvErrorCode(err), "cache read failed: "+err.Error(), nil)
		return
	}
	var entry bus.CacheEntry
	if err := json.Unmarshal(e.Value(), &entry); err != nil {
		// A corrupt entry is a miss; the next put replaces it.
		s.log.Warn("cache entry is not valid JSON; treating as a miss", "err", err)
		bus.Respond(req, bus.CacheGetResponse{})
		return
	}
	bus.Respond(req, bus.CacheGetResponse{Hit: true, Entry: &entry})
}

func (s *Service) handlePut(ctx context.Context, req micro.Request) {
	var in bus.CachePutRequest
	if err := json.Unmarshal(req.Data(), &in); err != nil {
		_ = req.Error(bus.CodeBadRequest, "request is not a valid cache put request: "+err.Error(), nil)
		return
	}
	if err := ValidKey(in.Key); err != nil {
		_ = req.Error(bus.CodeBadRequest, "key: "+err.Error(), nil)
		return
	}
	if in.Entry.CreatedAt.IsZero() {
		in.Entry.CreatedAt = time.Now().UTC()
	}
	data, err := json.Marshal(in.Entry)
	if err != nil {
		_ = req.Error(bus.CodeInternal, "encode entry: "+err.Error(), nil)
		return
	}
	if len(data) > s.cfg.MaxEntryBytes {
		_ = req.Error(bus.CodeBadRequest, fmt.Sprintf("entry: %v: %d bytes exceeds the limit of %d bytes",
			ErrEntryTooLarge, len(data), s.cfg.MaxEntryBytes), nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.KVTimeout)
	defer cancel()
	if _, err := s.kv.Put(ctx, in.Key, data); err != nil {
		s.invalidateIndex()
		s.log.Warn("cache put failed", "err", err)
		_ = req.Error(kvErrorCode(err), "cache write failed: "+err.Error(), nil)
		return
	}
	// Recorded before answering, so a get that follows this put on this
	// replica always reads the bucket.
	if s.index != nil && !s.index.Put(in.Key, time.Now()) {
		s.invalidateIndex() // full: stop answering misses rather than miss this key
	}
	bus.Respond(req, bus.CachePutResponse{Stored: true})
}

// ValidKey reports whether key is a cache key as [bus.CacheKey] makes
// them: [KeyLen] lowercase hex characters. The error wraps [ErrBadKey].
func ValidKey(key string) error {
	if len(key) != KeyLen {
		return fmt.Errorf("%w (got %d characters)", ErrBadKey, len(key))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w (invalid character at %d)", ErrBadKey, i)
		}
	}
	return nil
}

// kvErrorCode maps a KV failure to a reply code: unavailable when
// JetStream did not answer, internal otherwise.
func kvErrorCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return bus.CodeUnavailable
	default:
		return bus.CodeInternal
	}
}

// invalidateIndex stops trusting the index after a bucket operation failed
// (the bucket may be gone, and with it the watch) or the index is full:
// gets read the bucket until a fresh watch has rebuilt it.
func (s *Service) invalidateIndex() {
	if s.index != nil {
		s.index.Invalidate()
	}
}
