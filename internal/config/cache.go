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
}

func (c Cache) validate() []error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, errors.New("cache.ttl: must be above 0"))
	}
	if c.MaxBytes < 1<<20 {
		errs = append(errs, errors.New("cache.max_bytes: must be at least 1 MiB"))
	}
	return errs
}
