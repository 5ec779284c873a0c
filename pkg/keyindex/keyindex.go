// Package keyindex keeps an in-memory index of the keys a JetStream
// key-value bucket may hold, so that a lookup of a key the index has never
// seen is answered as "absent" without a round trip to the bucket (or to
// the service in front of it).
//
// The index is learned from a metadata-only watch of the whole bucket (no
// values are transferred) plus the keys its owner reports having put. It
// only ever answers "certainly absent"; a key it holds must be read as
// before, so a stale or colliding entry costs one read, never a wrong
// answer. Until the watch has delivered every existing key, and whenever
// the watch ends or its owner reports a failure, it answers nothing.
//
// A put by another process reaches the index when the watch update arrives
// (normally well under a millisecond on one NATS server); a lookup of that
// key in between is answered "absent", as if it had come just before the
// put.
//
// Keys must be hex digests of at least 16 characters (the index keeps the
// first 8 bytes of each); a key that is not is never reported absent.
package keyindex

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxKeys is the index size the services default to: about 36 MiB
// when full (36 bytes per key, measured for the cache service).
const DefaultMaxKeys = 1 << 20

// Waits before a new watch after the last one ended.
const (
	// RetryAfterFailure follows a failed or closed watch, or a bucket that
	// does not exist (yet).
	RetryAfterFailure = time.Second
	// RetryWhenFull follows a watch that met more keys than the index may
	// keep.
	RetryWhenFull = time.Minute
)

// ErrFull ends a watch of a bucket that holds more keys than the index
// may keep.
var ErrFull = errors.New("keyindex: the bucket holds more keys than the index may keep")

// Index is the key index of one bucket. Its methods are safe for
// concurrent use.
type Index struct {
	max     int
	now     func() time.Time
	rebuild chan struct{}

	mu    sync.RWMutex
	ready bool
	epoch uint64           // moved by Invalidate: a watch begun before it never makes the index ready
	ttl   time.Duration    // the bucket's; 0 = entries never expire
	keys  map[uint64]int64 // first 8 bytes of the key -> unix nanos of its latest put
}

// New returns an index of at most maxKeys keys; it answers nothing until
// [Index.Follow] has watched the bucket to its end.
func New(maxKeys int) *Index {
	return &Index{max: maxKeys, now: time.Now, rebuild: make(chan struct{}, 1), keys: map[uint64]int64{}}
}

// id is the index's form of a key: its first 8 bytes.
func id(key string) (uint64, bool) {
	if len(key) < 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(key[:16])); err != nil {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// Absent reports whether key is certainly not in the bucket (never put,
// deleted, or put longer than the bucket's TTL ago).
func (x *Index) Absent(key string) bool {
	k, ok := id(key)
	if !ok {
		return false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.ready {
		return false
	}
	at, ok := x.keys[k]
	return !ok || x.expired(at)
}

// expired reports whether a put at at has outlived the TTL. Called with mu
// held.
func (x *Index) expired(at int64) bool {
	return x.ttl > 0 && x.now().UnixNano()-at > int64(x.ttl)
}

// Put records that key was stored at at. It reports false when the index
// is full even after dropping expired keys; the owner should then call
// [Index.Invalidate] rather than let a stored key be reported absent.
func (x *Index) Put(key string, at time.Time) bool {
	k, ok := id(key)
	if !ok {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.keys[k]; !ok && len(x.keys) >= x.max {
		x.dropExpired()
		if len(x.keys) >= x.max {
			return false
		}
	}
	if prev, ok := x.keys[k]; !ok || at.UnixNano() > prev {
		x.keys[k] = at.UnixNano()
	}
	return true
}

// dropExpired removes keys put longer than the TTL ago (the bucket has
// removed them). Called with mu held.
func (x *Index) dropExpired() {
	for k, at := range x.keys {
		if x.expired(at) {
			delete(x.keys, k)
		}
	}
}

func (x *Index) remove(key string) {
	if k, ok := id(key); ok {
		x.mu.Lock()
		delete(x.keys, k)
		x.mu.Unlock()
	}
}

// setReady lets the index answer, unless it was invalidated since the
// watch that calls it began (at epoch).
func (x *Index) setReady(epoch uint64, ttl time.Duration) {
	x.mu.Lock()
	if epoch == x.epoch {
		x.ready, x.ttl = true, ttl
	}
	x.mu.Unlock()
}

func (x *Index) currentEpoch() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.epoch
}

// reset forgets every key; until the next watch is complete the index
// answers nothing.
func (x *Index) reset() {
	x.mu.Lock()
	x.ready = false
	clear(x.keys)
	x.mu.Unlock()
}

// Len returns how many keys the index holds.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.keys)
}

// Invalidate stops the index from answering until a fresh watch has
// rebuilt it. Call it after a bucket operation failed (the bucket may be
// gone, and with it the watch) or a Put was refused.
func (x *Index) Invalidate() {
	x.mu.Lock()
	x.epoch++
	x.ready = false
	clear(x.keys)
	x.mu.Unlock()
	select {
	case x.rebuild <- struct{}{}:
	default:
	}
}

// Follow keeps the index in step with the bucket open returns until ctx
// ends, rebuilding it from a fresh watch whenever one ends. log may be
// nil.
func (x *Index) Follow(ctx context.Context, open func(context.Context) (jetstream.KeyValue, error), log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		err := x.watch(ctx, open)
		x.reset()
		if ctx.Err() != nil {
			return
		}
		wait := RetryAfterFailure
		if errors.Is(err, ErrFull) {
			wait = RetryWhenFull
		}
		level := slog.LevelWarn
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			level = slog.LevelDebug // not declared yet (or no cache deployed): nothing is wrong
		}
		log.Log(ctx, level, "key index stopped; lookups go to the bucket until it is rebuilt", "err", err, "retry_in", wait, "max_keys", x.max)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-x.rebuild:
		}
	}
}

// watch runs one watch: every key the bucket holds, then each change.
func (x *Index) watch(ctx context.Context, open func(context.Context) (jetstream.KeyValue, error)) error {
	epoch := x.currentEpoch()
	kv, err := open(ctx)
	if err != nil {
		return fmt.Errorf("open bucket: %w", err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket status: %w", err)
	}
	w, err := kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-x.rebuild:
			return errors.New("invalidated by its owner")
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("watch closed")
			case e == nil: // every existing key has been delivered
				x.setReady(epoch, st.TTL())
			case e.Operation() == jetstream.KeyValuePut:
				if !x.Put(e.Key(), e.Created()) {
					return ErrFull
				}
			default: // delete or purge
				x.remove(e.Key())
			}
		}
	}
}
