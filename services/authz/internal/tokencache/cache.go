// Package tokencache is a bounded, expiring, per-replica cache of verified
// credentials, so that a credential presented again (every reconnect, every
// HTTP request) costs a map lookup instead of a signature check.
package tokencache

import (
	"sync"
	"time"
)

// evictSample is how many entries are sampled to choose a victim when the
// cache is full: the soonest-expiring of them goes (as Redis does), which
// keeps eviction O(1) without an LRU list.
const evictSample = 8

// Cache maps a credential to a value until an expiry. Entries never outlive
// the expiry given to [Cache.Put], nor maxAge. It is safe for concurrent use.
type Cache[V any] struct {
	mu      sync.Mutex
	entries map[string]entry[V]
	max     int
	maxAge  time.Duration
}

type entry[V any] struct {
	val     V
	expires time.Time
}

// New returns a cache holding at most max entries, each for at most maxAge.
func New[V any](max int, maxAge time.Duration) *Cache[V] {
	if max < 1 {
		max = 1
	}
	return &Cache[V]{entries: make(map[string]entry[V]), max: max, maxAge: maxAge}
}

// Get returns the value stored for key if it has not expired at now.
func (c *Cache[V]) Get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		var zero V
		return zero, false
	}
	return e.val, true
}

// Put stores v for key until expires (or now+maxAge, whichever is sooner).
// An entry that would already be expired is not stored.
func (c *Cache[V]) Put(key string, v V, expires, now time.Time) {
	if limit := now.Add(c.maxAge); expires.After(limit) {
		expires = limit
	}
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = entry[V]{val: v, expires: expires}
}

// evictLocked removes the expired entries among a sample, or else the
// sampled entry that expires soonest.
func (c *Cache[V]) evictLocked(now time.Time) {
	var victim string
	var victimExp time.Time
	removed := false
	n := 0
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			removed = true
		} else if victim == "" || e.expires.Before(victimExp) {
			victim, victimExp = k, e.expires
		}
		if n++; n == evictSample {
			break
		}
	}
	if !removed && victim != "" {
		delete(c.entries, victim)
	}
}

// Len returns the number of entries, expired or not.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Delete removes key.
func (c *Cache[V]) Delete(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// DeleteFunc removes every entry whose value matches.
func (c *Cache[V]) DeleteFunc(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if match(e.val) {
			delete(c.entries, k)
		}
	}
}
