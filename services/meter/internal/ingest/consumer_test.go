package ingest

import (
	"testing"
	"time"
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
}
