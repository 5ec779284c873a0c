package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go/jetstream"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Consumer{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		c.failures = i
		if got := c.backoff(); got != w*time.Millisecond {
			t.Errorf("backoff after %d failures = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	c.failures = 1 << 20 // no overflow after a long outage
	if got := c.backoff(); got != time.Second {
		t.Errorf("backoff after many failures = %v", got)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) succeeded")
	}
	for _, w := range []int{-1, MaxWriters + 1} {
		_, err := New(Config{Consumer: fakeConsumer{}, Writer: fakeWriter{}, BatchSize: 1, FlushInterval: time.Second, Writers: w})
		if err == nil || !strings.Contains(err.Error(), "writers") {
			t.Errorf("New with Writers %d = %v, want a writers error", w, err)
		}
	}
	if c, err := New(Config{Consumer: fakeConsumer{}, Writer: fakeWriter{}, BatchSize: 1, FlushInterval: time.Second}); err != nil || c.cfg.Writers != DefaultWriters {
		t.Errorf("New without Writers = %+v, %v; want DefaultWriters", c, err)
	}
}

// fakeConsumer and fakeWriter satisfy New's argument checks only.
type fakeConsumer struct{ jetstream.Consumer }

type fakeWriter struct{}

func (fakeWriter) InsertBatch(context.Context, []bus.UsageRecord) (int64, error) { return 0, nil }
