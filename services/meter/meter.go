package meter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ingest"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/quota"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// Service identity and timing bounds.
const (
	// ServiceName is the micro service name.
	ServiceName = "gatehouse-meter"
	// ServiceVersion is the micro service version (semver).
	ServiceVersion = "0.1.0"
	// AckWait is how long the ledger consumer's server waits for an ack
	// before redelivering; it covers a pull, a write and the acks.
	AckWait = 30 * time.Second
	// MaxAckPendingBatches is how many batches may be unacknowledged at
	// once across all replicas, in units of BatchSize.
	MaxAckPendingBatches = 4
	// QueryTimeout bounds one usage query.
	QueryTimeout = 10 * time.Second
	// SetupTimeout bounds opening, migrating and declaring streams when
	// ctx has no deadline of its own.
	SetupTimeout = 30 * time.Second
	// FlushTimeout bounds pushing the last acks to NATS on shutdown.
	FlushTimeout = 5 * time.Second
)

// Service is the meter service. Create it with [New]; [Service.Run] may be
// called once.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	subj    bus.Subjects
	quota   quota.Quota
	running atomic.Bool

	// backoffMin and backoffMax tune the ledger consumer's redelivery
	// delay; zero means the ingest defaults. Tests shorten them.
	backoffMin, backoffMax time.Duration

	// mu guards closed and the store while handlers use it: handlers hold
	// the read lock, shutdown takes the write lock.
	mu     sync.RWMutex
	store  ledger.Store
	closed bool
}

// New validates cfg and returns a Service. It opens nothing and starts no
// goroutines.
func New(cfg Config, nc *nats.Conn) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	return &Service{
		cfg:   cfg,
		nc:    nc,
		log:   cfg.Logger.With("svc", "meter"),
		subj:  bus.NewSubjects(cfg.Prefix),
		quota: quota.Unlimited{},
	}, nil
}

// Migrate applies the ledger migrations for cfg and returns; it is what
// `gatehouse migrate` runs. It is safe to run while meter replicas start.
func Migrate(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	store, err := ledger.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath)
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	cfg.Logger.With("svc", "meter").Info("ledger migrated", "applied", applied)
	return nil
}

// Run opens and migrates the ledger, consumes the USAGE stream and serves
// the micro endpoints until ctx ends. Then it stops the endpoints, lets
// the ledger consumer write and acknowledge the batch it holds, closes the
// ledger and returns nil. A start-up failure is returned at once, with
// everything started so far stopped; if ctx ended during start-up, Run
// returns nil.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.closeStore()
	ing, svc, err := s.setup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			s.log.Info("meter stopped during start-up", "err", err)
			return nil
		}
		return err
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ing.Run(ctx) // returns nil once ctx ends and the last batch is settled
	}()
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		s.maintain(ctx)
	}()
	s.log.Info("meter running", "batch_size", s.cfg.BatchSize, "flush_interval", s.cfg.FlushInterval)

	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		s.log.Warn("stop micro service", "err", err)
	}
	<-done
	<-maintained
	if err := s.nc.FlushTimeout(FlushTimeout); err != nil {
		s.log.Warn("flush acks on shutdown", "err", err)
	}
	s.log.Info("meter stopped")
	return nil
}

// setup opens and migrates the ledger, declares the stream and consumer
// and registers the micro service, within [SetupTimeout] unless ctx has a
// deadline. The store it opens is closed by Run.
func (s *Service) setup(ctx context.Context) (*ingest.Consumer, micro.Service, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, SetupTimeout)
		defer cancel()
	}
	store, err := ledger.Open(ctx, s.cfg.DatabaseURL, s.cfg.SQLitePath)
	if err != nil {
		return nil, nil, fmt.Errorf("meter: %w", err)
	}
	s.mu.Lock()
	s.store = store
	s.mu.Unlock()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("meter: %w", err)
	}
	s.log.Info("ledger ready", "postgres", s.cfg.DatabaseURL != "", "migrations_applied", applied)
	if p, ok := store.(ledger.Partitioned); ok {
		if err := p.EnsurePartitions(ctx, s.now(), s.cfg.PartitionsAhead); err != nil {
			return nil, nil, fmt.Errorf("meter: %w", err)
		}
	}
	ing, err := s.newIngest(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.newQuota(ctx); err != nil {
		return nil, nil, err
	}
	svc, err := s.addService()
	if err != nil {
		return nil, nil, err
	}
	return ing, svc, nil
}

// newIngest declares the streams and the durable ledger consumer.
func (s *Service) newIngest(ctx context.Context) (*ingest.Consumer, error) {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("meter: jetstream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, s.subj, s.cfg.Streams); err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, s.subj.StreamUsage(), jetstream.ConsumerConfig{
		Durable:       bus.ConsumerLedger,
		Description:   "meter: usage records into the ledger",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1, // a record is never dropped; poison is terminated explicitly
		MaxAckPending: MaxAckPendingBatches * s.cfg.BatchSize,
	})
	if err != nil {
		return nil, fmt.Errorf("meter: declare consumer %s: %w", bus.ConsumerLedger, err)
	}
	ing, err := ingest.New(ingest.Config{
		Consumer:      cons,
		Writer:        s.store,
		BatchSize:     s.cfg.BatchSize,
		FlushInterval: s.cfg.FlushInterval,
		Writers:       s.cfg.LedgerWriters,
		BackoffMin:    s.backoffMin,
		BackoffMax:    s.backoffMax,
		Logger:        s.log.With("component", "ingest"),
	})
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	return ing, nil
}

// now is the service's clock: the quota clock when one is injected.
func (s *Service) now() time.Time {
	if s.cfg.Quota.Now != nil {
		return s.cfg.Quota.Now()
	}
	return time.Now()
}

// newQuota declares the quota bucket and switches reserve and settle to
// the configured plans; without plans every reservation is granted.
func (s *Service) newQuota(ctx context.Context) error {
	if !s.cfg.Quota.Enabled() {
		return nil
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("meter: jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.subj.QuotaBucket(),
		Description: "Gatehouse quota state, one key per subject, updated by compare-and-set",
		History:     1,
		TTL:         bus.QuotaStateMaxAge,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("meter: declare quota bucket %s: %w", s.subj.QuotaBucket(), err)
	}
	q, err := quota.NewKV(s.cfg.Quota, kv, s.store, s.log.With("component", "quota"))
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	s.quota = q
	s.log.Info("quota plans enforced", "plans", len(s.cfg.Quota.Plans))
	return nil
}

// maintain creates ledger partitions ahead and drops expired ones every
// [Config.MaintenanceInterval] until ctx ends (Postgres only).
func (s *Service) maintain(ctx context.Context) {
	p, ok := s.store.(ledger.Partitioned)
	if !ok {
		return
	}
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		s.maintainOnce(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) maintainOnce(ctx context.Context, p ledger.Partitioned) {
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	now := s.now()
	if err := p.EnsurePartitions(ctx, now, s.cfg.PartitionsAhead); err != nil && ctx.Err() == nil {
		s.log.Warn("create ledger partitions ahead", "err", err)
	}
	if s.cfg.RetentionDays == 0 {
		return
	}
	dropped, err := p.DropPartitionsBefore(ctx, now.AddDate(0, 0, -s.cfg.RetentionDays))
	if err != nil && ctx.Err() == nil {
		s.log.Warn("drop expired ledger partitions", "err", err)
	}
	if len(dropped) > 0 {
		s.log.Info("dropped expired ledger partitions", "partitions", dropped)
	}
}

// closeStore waits for in-flight handlers, then closes the ledger.
func (s *Service) closeStore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("close ledger", "err", err)
		}
	}
}
