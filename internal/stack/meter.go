package stack

import (
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/nats-io/nats.go"
)

func buildMeter(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return meter.New(MeterConfig(cfg, log), nc)
}

// MeterConfig maps the configuration to the meter's.
func MeterConfig(cfg config.Config, log *slog.Logger) meter.Config {
	mc := meter.Config{
		Prefix:        cfg.NATS.Prefix,
		Logger:        log,
		DatabaseURL:   cfg.Meter.DatabaseURL,
		BatchSize:     cfg.Meter.BatchSize,
		FlushInterval: cfg.Meter.FlushInterval,
	}
	if mc.DatabaseURL == "" {
		mc.SQLitePath = cfg.SQLitePath()
	}
	return mc
}
