package tokencache

import (
	"strconv"
	"testing"
	"time"
)

func TestCacheExpiry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	c := New[int](10, time.Minute)
	c.Put("a", 1, now.Add(10*time.Second), now)
	c.Put("b", 2, now.Add(time.Hour), now) // capped at maxAge
	c.Put("c", 3, now, now)                // already expired: not stored
	if v, ok := c.Get("a", now.Add(9*time.Second)); !ok || v != 1 {
		t.Fatalf("a before expiry = %v, %v", v, ok)
	}
	if _, ok := c.Get("a", now.Add(10*time.Second)); ok {
		t.Fatal("a served at its expiry")
	}
	if _, ok := c.Get("b", now.Add(time.Minute)); ok {
		t.Fatal("b outlived maxAge")
	}
	if _, ok := c.Get("c", now); ok {
		t.Fatal("expired entry stored")
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	const max = 50
	c := New[int](max, time.Hour)
	for i := range 1000 {
		c.Put(strconv.Itoa(i), i, now.Add(time.Duration(i+1)*time.Second), now)
		if c.Len() > max {
			t.Fatalf("cache grew to %d entries, limit %d", c.Len(), max)
		}
	}
	if v, ok := c.Get("999", now); !ok || v != 999 {
		t.Fatalf("newest entry missing: %v %v", v, ok)
	}
	// Replacing an existing key never evicts another.
	before := c.Len()
	c.Put("999", 1, now.Add(time.Minute), now)
	if c.Len() != before {
		t.Fatalf("update changed size %d -> %d", before, c.Len())
	}
}
