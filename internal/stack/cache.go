package stack

import (
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/cache"
	"github.com/nats-io/nats.go"
)

func buildCache(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return cache.New(cache.Config{
		Prefix:       cfg.NATS.Prefix,
		Logger:       log,
		TTL:          cfg.Cache.TTL,
		MaxBytes:     cfg.Cache.MaxBytes,
		MaxIndexKeys: cfg.Cache.MaxIndexKeys,
	}, nc)
}
