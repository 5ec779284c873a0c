package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// DefaultWriters is the default [Config.Writers].
	DefaultWriters = 1
	// MaxWriters bounds [Config.Writers].
	MaxWriters = 8
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
	// A pulled batch may wait up to one WriteTimeout for a free writer
	// before its own write starts, so twice WriteTimeout plus the pull
	// must stay below the consumer's AckWait.
	WriteTimeout time.Duration
	// Writers is how many batches are written to the ledger at once, each
	// in its own transaction. While they write, the next batch is pulled
	// and decoded, so at most Writers+1 pulled batches are unacknowledged.
	// 0 means [DefaultWriters]; at most [MaxWriters].
	Writers int
	// Logger receives poison and failure reports. nil means slog.Default().
	Logger *slog.Logger
}

// Consumer pulls usage messages and writes them to the ledger. Its Run
// method is not safe to call concurrently with itself.
type Consumer struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	failures int       // consecutive failed writes
	resumeAt time.Time // no pull before this, after a failed write
}

// batch is one pulled batch, decoded: the records to write (request ids
// unique) and the messages to settle once the write ends.
type batch struct {
	recs []bus.UsageRecord
	good []jetstream.Msg
}

// New returns a Consumer. It starts nothing.
func New(cfg Config) (*Consumer, error) {
	switch {
	case cfg.Consumer == nil || cfg.Writer == nil:
		return nil, errors.New("ingest: consumer and writer are required")
	case cfg.BatchSize <= 0 || cfg.FlushInterval <= 0:
		return nil, errors.New("ingest: batch size and flush interval must be positive")
	case cfg.Writers < 0 || cfg.Writers > MaxWriters:
		return nil, fmt.Errorf("ingest: writers %d is outside 0..%d", cfg.Writers, MaxWriters)
	}
	if cfg.Writers == 0 {
		cfg.Writers = DefaultWriters
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

// Run pulls and writes batches until ctx ends. Run's goroutine pulls and
// decodes; Writers goroutines, owned by Run, write and settle, so the
// next batch is pulled while the previous one is written. When ctx ends,
// Run lets the pull in flight finish (at most FlushInterval), hands that
// last batch over, waits until every batch it pulled is written and
// settled, and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	work := make(chan batch) // unbuffered: a decoded batch waits for a free writer
	var writers sync.WaitGroup
	for range c.cfg.Writers {
		writers.Go(func() {
			for b := range work {
				c.write(ctx, b)
			}
		})
	}
	defer writers.Wait()
	defer close(work)
	for ctx.Err() == nil {
		// After a failed write, pull nothing until its messages are due
		// again: the ledger is probably unreachable.
		if d := c.pause(); d > 0 {
			c.sleep(ctx, d)
			continue
		}
		fetched, err := c.cfg.Consumer.Fetch(c.cfg.BatchSize, jetstream.FetchMaxWait(c.cfg.FlushInterval))
		if err != nil {
			c.log.Warn("usage pull failed", "err", err)
			c.mu.Lock()
			d := c.backoff()
			c.mu.Unlock()
			c.sleep(ctx, d)
			continue
		}
		var msgs []jetstream.Msg
		for m := range fetched.Messages() {
			msgs = append(msgs, m)
		}
		if err := fetched.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("usage pull ended", "err", err, "messages", len(msgs))
		}
		if b := c.decode(msgs); len(b.recs) > 0 {
			work <- b
		}
	}
	return nil
}

// pause is how long pulls must still wait after a failed write.
func (c *Consumer) pause() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Until(c.resumeAt)
}

// decode parses msgs, terminating poison ones, and drops repeated
// request ids (their messages are still settled with the batch).
func (c *Consumer) decode(msgs []jetstream.Msg) batch {
	b := batch{recs: make([]bus.UsageRecord, 0, len(msgs)), good: make([]jetstream.Msg, 0, len(msgs))}
	seen := make(map[string]struct{}, len(msgs))
	for _, m := range msgs {
		r, err := decode(m.Data(), func() time.Time {
			if md, err := m.Metadata(); err == nil {
				return md.Timestamp
			}
			return time.Time{}
		})
		if err != nil {
			c.term(m, err)
			continue
		}
		b.good = append(b.good, m)
		if _, dup := seen[r.RequestID]; !dup {
			seen[r.RequestID] = struct{}{}
			b.recs = append(b.recs, r)
		}
	}
	return b
}

// write stores one batch and settles its messages: acknowledged after
// the commit, or nak'ed with a growing delay when the write fails.
func (c *Consumer) write(ctx context.Context, b batch) {
	// The write outlives ctx so that a shutdown still commits and acks
	// the batch it already pulled.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.WriteTimeout)
	defer cancel()
	began := time.Now()
	n, err := c.cfg.Writer.InsertBatch(wctx, b.recs)
	if err != nil {
		c.mu.Lock()
		delay := c.backoff()
		c.failures++
		failures := c.failures
		c.resumeAt = time.Now().Add(delay)
		c.mu.Unlock()
		c.log.Error("usage batch not stored; redelivering", "err", err, "records", len(b.recs),
			"retry_in", delay, "consecutive_failures", failures)
		for _, m := range b.good {
			if err := m.NakWithDelay(delay); err != nil {
				c.log.Warn("usage nak failed; redelivered after ack wait", "err", err)
			}
		}
		return
	}
	c.mu.Lock()
	c.failures = 0
	c.mu.Unlock()
	for _, m := range b.good {
		if err := m.Ack(); err != nil {
			// The record is committed: a redelivery is a no-op insert.
			c.log.Warn("usage ack failed after commit", "err", err)
		}
	}
	c.log.Debug("usage batch stored", "messages", len(b.good), "new", n, "duplicates", int64(len(b.recs))-n,
		"write", time.Since(began))
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

// backoff is the delay after c.failures consecutive failures; c.mu must
// be held.
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
