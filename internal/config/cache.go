package config

import (
	"errors"
	"time"
)

// Cache configures the response cache.
type Cache struct {
	// TTL is how long an answer stays cached. Default 24h.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes bounds the cache bucket. Default 256 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxIndexKeys bounds each cache replica's in-memory index of the
	// bucket's keys, which answers misses without a KV read. 0 means the
	// cache default (1,048,576, about 36 MiB when full); -1 turns the index
	// off.
	MaxIndexKeys int `yaml:"max_index_keys"`
}

func (c Cache) validate() []error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, errors.New("cache.ttl: must be above 0"))
	}
	if c.MaxBytes < 1<<20 {
		errs = append(errs, errors.New("cache.max_bytes: must be at least 1 MiB"))
	}
	if c.MaxIndexKeys < -1 || c.MaxIndexKeys > 1<<26 {
		errs = append(errs, errors.New("cache.max_index_keys: must be -1 (off), 0 (default 1048576) or up to 67108864"))
	}
	return errs
}
