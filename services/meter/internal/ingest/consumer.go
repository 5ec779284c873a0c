package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [Config].
const (
	// DefaultBackoffMin is the first redelivery delay after a failed write.
	DefaultBackoffMin = 500 * time.Millisecond
	// DefaultBackoffMax caps the redelivery delay after repeated failures.
	DefaultBackoffMax = 30 * time.Second
	// DefaultWriteTimeout bounds one batch write. It must stay well below
	// the consumer's AckWait, or messages are redelivered mid-write.
	DefaultWriteTimeout = 10 * time.Second
)

// Writer stores a batch of records in one transaction, skipping request
// ids it already holds. ledger.Store implements it.
type Writer interface {
	InsertBatch(ctx context.Context, recs []bus.UsageRecord) (int64, error)
}

// Config configures a [Consumer].
type Config struct {
	// Consumer is the durable pull consumer on the USAGE stream, with
	// explicit acks. Required.
	Consumer jetstream.Consumer
	// Writer is the ledger. Required.
	Writer Writer
	// BatchSize is the most messages pulled and written at once. Required.
	BatchSize int
	// FlushInterval is the longest a pull waits to fill a batch. Required.
	FlushInterval time.Duration
	// BackoffMin is the delay before a failed batch is redelivered; it
	// doubles with each consecutive failure. 0 means [DefaultBackoffMin].
	BackoffMin time.Duration
	// BackoffMax caps the delay. 0 means [DefaultBackoffMax].
	BackoffMax time.Duration
	// WriteTimeout bounds one batch write. 0 means [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// Logger receives poison and failure reports. nil means slog.Default().
	Logger *slog.Logger
}

// Consumer pulls usage messages and writes them to the ledger. Its Run
// method is not safe to call concurrently with itself.
type Consumer struct {
	cfg      Config
	log      *slog.Logger
	failures int // consecutive failed writes
}

// New returns a Consumer. It starts nothing.
func New(cfg Config) (*Consumer, error) {
	switch {
	case cfg.Consumer == nil || cfg.Writer == nil:
		return nil, errors.New("ingest: consumer and writer are required")
	case cfg.BatchSize <= 0 || cfg.FlushInterval <= 0:
		return nil, errors.New("ingest: batch size and flush interval must be positive")
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Consumer{cfg: cfg, log: cfg.Logger}, nil
}

// Run pulls and writes batches until ctx ends. It then lets the pull in
// flight finish (at most FlushInterval), writes and acknowledges that last
// batch, and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		batch, err := c.cfg.Consumer.Fetch(c.cfg.BatchSize, jetstream.FetchMaxWait(c.cfg.FlushInterval))
		if err != nil {
			c.log.Warn("usage pull failed", "err", err)
			c.sleep(ctx, c.backoff())
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("usage pull ended", "err", err, "messages", len(msgs))
		}
		if len(msgs) == 0 {
			continue
		}
		if err := c.process(ctx, msgs); err != nil {
			c.sleep(ctx, c.backoff())
		}
	}
	return nil
}

// process writes one batch and settles its messages: poison ones are
// terminated, the rest acknowledged after commit or nak'ed with a delay.
func (c *Consumer) process(ctx context.Context, msgs []jetstream.Msg) error {
	recs := make([]bus.UsageRecord, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	seen := make(map[string]struct{}, len(msgs))
	for _, m := range msgs {
		var published time.Time
		if md, err := m.Metadata(); err == nil {
			published = md.Timestamp
		}
		r, err := Decode(m.Data(), published)
		if err != nil {
			c.term(m, err)
			continue
		}
		good = append(good, m)
		if _, dup := seen[r.RequestID]; !dup {
			seen[r.RequestID] = struct{}{}
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	// The write outlives ctx so that a shutdown still commits and acks
	// the batch it already pulled.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.WriteTimeout)
	defer cancel()
	began := time.Now()
	n, err := c.cfg.Writer.InsertBatch(wctx, recs)
	if err != nil {
		delay := c.backoff()
		c.failures++
		c.log.Error("usage batch not stored; redelivering", "err", err, "records", len(recs),
			"retry_in", delay, "consecutive_failures", c.failures)
		for _, m := range good {
			if err := m.NakWithDelay(delay); err != nil {
				c.log.Warn("usage nak failed; redelivered after ack wait", "err", err)
			}
		}
		return err
	}
	c.failures = 0
	for _, m := range good {
		if err := m.Ack(); err != nil {
			// The record is committed: a redelivery is a no-op insert.
			c.log.Warn("usage ack failed after commit", "err", err)
		}
	}
	c.log.Debug("usage batch stored", "messages", len(good), "new", n, "duplicates", int64(len(recs))-n,
		"write", time.Since(began))
	return nil
}

func (c *Consumer) term(m jetstream.Msg, cause error) {
	attrs := []any{"err", cause, "subject", m.Subject()}
	if md, err := m.Metadata(); err == nil {
		attrs = append(attrs, "stream_seq", md.Sequence.Stream, "deliveries", md.NumDelivered)
	}
	c.log.Error("terminating poison usage message", attrs...)
	if err := m.TermWithReason(truncate(cause.Error(), maxTermReason)); err != nil {
		c.log.Warn("usage term failed", "err", err)
	}
}

// maxTermReason bounds the reason attached to a terminated message.
const maxTermReason = 200

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// backoff is the delay after c.failures consecutive failures.
func (c *Consumer) backoff() time.Duration {
	d := c.cfg.BackoffMin
	for i := 0; i < c.failures && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.BackoffMax)
}

func (c *Consumer) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
