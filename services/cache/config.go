package cache

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
)

// Defaults applied by [Config.withDefaults] to zero fields.
const (
	// DefaultTTL is how long an entry lives.
	DefaultTTL = 24 * time.Hour
	// DefaultMaxBytes bounds the whole bucket.
	DefaultMaxBytes = 256 << 20
	// DefaultMaxEntryBytes bounds one encoded entry.
	DefaultMaxEntryBytes = 1 << 20
	// DefaultSetupTimeout bounds declaring the bucket at start-up.
	DefaultSetupTimeout = 10 * time.Second
	// DefaultKVTimeout bounds one KV operation while serving a request.
	DefaultKVTimeout = 2 * time.Second
	// DefaultMaxIndexKeys bounds the key index (about 36 bytes per key:
	// a map of 1,048,576 such entries measured 36 MiB of heap).
	DefaultMaxIndexKeys = keyindex.DefaultMaxKeys
)

// ServiceName and ServiceVersion identify the micro service.
const (
	ServiceName    = "gatehouse-cache"
	ServiceVersion = "0.1.0"
)

// Config configures the cache service. The zero value is usable.
type Config struct {
	// Prefix is the subject prefix; "" means [bus.DefaultPrefix].
	Prefix string
	// Logger receives the service's logs; nil means slog.Default(). It is
	// scoped with svc=cache.
	Logger *slog.Logger
	// TTL is the lifetime of an entry (the bucket's TTL). Default
	// [DefaultTTL].
	TTL time.Duration
	// MaxBytes bounds the bucket's total size; the oldest entries are
	// evicted when it is reached. Default [DefaultMaxBytes].
	MaxBytes int64
	// MaxEntryBytes is the largest encoded entry accepted by put. Default
	// [DefaultMaxEntryBytes]; must not exceed MaxBytes.
	MaxEntryBytes int
	// KVTimeout bounds each KV read or write made for a request. Default
	// [DefaultKVTimeout].
	KVTimeout time.Duration
	// MaxIndexKeys bounds the in-memory index of the bucket's keys that
	// answers most misses without a KV read (see the package doc). When the
	// bucket holds more keys than this (entries put within the last TTL),
	// the index is dropped and every get reads the bucket until a rebuild a
	// minute later fits. Default [DefaultMaxIndexKeys]; negative turns the
	// index off.
	MaxIndexKeys int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if c.KVTimeout == 0 {
		c.KVTimeout = DefaultKVTimeout
	}
	if c.MaxIndexKeys == 0 {
		c.MaxIndexKeys = DefaultMaxIndexKeys
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
// Errors wrap [ErrInvalidConfig].
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Prefix != "" && !bus.ValidPrefix(c.Prefix):
		return fmt.Errorf("%w: Prefix %q is not a valid subject prefix", ErrInvalidConfig, c.Prefix)
	case c.TTL < time.Second:
		return fmt.Errorf("%w: TTL %s is below 1s", ErrInvalidConfig, c.TTL)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: MaxBytes %d is negative", ErrInvalidConfig, c.MaxBytes)
	case c.MaxEntryBytes < 0 || c.MaxEntryBytes > math.MaxInt32:
		return fmt.Errorf("%w: MaxEntryBytes %d is out of range 1..%d", ErrInvalidConfig, c.MaxEntryBytes, math.MaxInt32)
	case int64(c.MaxEntryBytes) > c.MaxBytes:
		return fmt.Errorf("%w: MaxEntryBytes %d exceeds MaxBytes %d", ErrInvalidConfig, c.MaxEntryBytes, c.MaxBytes)
	case c.KVTimeout < 0:
		return fmt.Errorf("%w: KVTimeout %s is negative", ErrInvalidConfig, c.KVTimeout)
	}
	return nil
}
