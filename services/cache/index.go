package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyIndex knows which keys the bucket may hold, so that a get for a key
// it has never seen is answered as a miss without a JetStream read (most
// gets are misses: every new prompt is one, and the read costs a round
// trip through the stream's store on every request's path).
//
// It is learned from a metadata-only watch of the whole bucket (no values
// are transferred) plus this replica's own puts. It only ever answers
// "certainly absent"; a key it holds is read from the bucket as before,
// so a stale or colliding entry costs one read, never a wrong hit. Until
// the watch has delivered every existing key, and whenever the watch or a
// KV operation fails, it answers nothing and every get reads the bucket.
//
// A put by another replica reaches this index when that replica's watch
// update arrives (normally well under a millisecond on one NATS server);
// a get for that key in between is a miss, as if it had come just before
// the put.
type keyIndex struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.RWMutex
	ready bool
	keys  map[uint64]int64 // first 8 bytes of the key -> unix nanos of its latest put
}

// errIndexFull ends a watch whose bucket holds more keys than the index
// may keep.
var errIndexFull = errors.New("cache: key index is full")

func newKeyIndex(ttl time.Duration, max int) *keyIndex {
	return &keyIndex{ttl: ttl, max: max, now: time.Now, keys: map[uint64]int64{}}
}

// keyID is the index's form of a key: its first 8 bytes. Keys are hex
// SHA-256 digests (checked by [ValidKey] before any lookup).
func keyID(key string) (uint64, bool) {
	if len(key) < 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(key[:16])); err != nil {
		return 0, false
	}
	var id uint64
	for _, c := range b {
		id = id<<8 | uint64(c)
	}
	return id, true
}

// absent reports whether key is certainly not in the bucket (never put,
// deleted, or put longer than the TTL ago).
func (x *keyIndex) absent(key string) bool {
	id, ok := keyID(key)
	if !ok {
		return false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.ready {
		return false
	}
	at, ok := x.keys[id]
	return !ok || x.now().UnixNano()-at > int64(x.ttl)
}

// put records that key was stored at at. It reports false when the index
// is full even after dropping expired keys.
func (x *keyIndex) put(key string, at time.Time) bool {
	id, ok := keyID(key)
	if !ok {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.keys[id]; !ok && len(x.keys) >= x.max {
		x.dropExpired()
		if len(x.keys) >= x.max {
			return false
		}
	}
	if prev, ok := x.keys[id]; !ok || at.UnixNano() > prev {
		x.keys[id] = at.UnixNano()
	}
	return true
}

// dropExpired removes keys put longer than the TTL ago (the bucket has
// removed them). Called with mu held.
func (x *keyIndex) dropExpired() {
	cutoff := x.now().UnixNano() - int64(x.ttl)
	for id, at := range x.keys {
		if at < cutoff {
			delete(x.keys, id)
		}
	}
}

func (x *keyIndex) remove(key string) {
	if id, ok := keyID(key); ok {
		x.mu.Lock()
		delete(x.keys, id)
		x.mu.Unlock()
	}
}

func (x *keyIndex) setReady() {
	x.mu.Lock()
	x.ready = true
	x.mu.Unlock()
}

// reset forgets every key; until the next watch is complete every get
// reads the bucket.
func (x *keyIndex) reset() {
	x.mu.Lock()
	x.ready = false
	clear(x.keys)
	x.mu.Unlock()
}

// Waits before rebuilding the index after its watch ended.
const (
	indexRetry     = time.Second // the watch failed
	indexFullRetry = time.Minute // the bucket held more keys than MaxIndexKeys
)

// followKeys keeps the index in step with the bucket until ctx ends,
// rebuilding it from a fresh watch whenever one ends.
func (s *Service) followKeys(ctx context.Context) {
	for {
		err := s.watchKeys(ctx)
		s.index.reset()
		if ctx.Err() != nil {
			return
		}
		wait := indexRetry
		if errors.Is(err, errIndexFull) {
			wait = indexFullRetry
		}
		s.log.Warn("cache key index stopped; gets read the bucket until it is rebuilt", "err", err, "retry_in", wait, "max_index_keys", s.cfg.MaxIndexKeys)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-s.rebuild:
		}
	}
}

// watchKeys runs one watch: every key the bucket holds, then each change.
func (s *Service) watchKeys(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.rebuild:
			return errors.New("a bucket operation failed")
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("watch closed")
			case e == nil: // every existing key has been delivered
				s.index.setReady()
			case e.Operation() == jetstream.KeyValuePut:
				if !s.index.put(e.Key(), e.Created()) {
					return errIndexFull
				}
			default: // delete or purge
				s.index.remove(e.Key())
			}
		}
	}
}

// indexFailed stops trusting the index after a bucket operation failed
// (the bucket may be gone, and with it the watch): gets read the bucket
// until a fresh watch has rebuilt the index.
func (s *Service) indexFailed() {
	if s.index == nil {
		return
	}
	s.index.reset()
	select {
	case s.rebuild <- struct{}{}:
	default:
	}
}
