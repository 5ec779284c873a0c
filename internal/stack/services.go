package stack

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/cache"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/edge"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/nats-io/nats.go"
)

// runner is what every service exposes.
type runner interface {
	Run(ctx context.Context) error
}

// builders construct each service from the configuration. Keys are the
// service names used on the command line.
var builders = map[string]func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error){
	"edge": func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
		return edge.New(EdgeConfig(cfg, log), nc)
	},
	"authz": func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
		return authz.New(authz.Config{
			Prefix:       cfg.NATS.Prefix,
			Logger:       log,
			DataDir:      cfg.DataDir,
			DevIssuerURL: cfg.Authz.DevIssuerURL,
			Audience:     cfg.Authz.Audience,
		}, nc)
	},
	"chat": func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
		return chat.New(chat.Config{
			Prefix:      cfg.NATS.Prefix,
			Logger:      log,
			Concurrency: cfg.Chat.Concurrency,
			EchoDelay:   cfg.Chat.EchoDelay,
		}, nc)
	},
	"meter": func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
		return meter.New(MeterConfig(cfg, log), nc)
	},
	"cache": func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
		return cache.New(cache.Config{
			Prefix:   cfg.NATS.Prefix,
			Logger:   log,
			TTL:      cfg.Cache.TTL,
			MaxBytes: cfg.Cache.MaxBytes,
		}, nc)
	},
}

// ServiceNames lists the services in a stable order.
func ServiceNames() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EdgeConfig maps the configuration to the edge's.
func EdgeConfig(cfg config.Config, log *slog.Logger) edge.Config {
	ec := edge.Config{
		Prefix:                  cfg.NATS.Prefix,
		Logger:                  log,
		Addr:                    cfg.Edge.Addr,
		TLSCertFile:             cfg.Edge.TLSCert,
		TLSKeyFile:              cfg.Edge.TLSKey,
		PlainHTTP:               cfg.Edge.PlainHTTP,
		AllowedOrigins:          cfg.Edge.AllowedOrigins,
		KeepAliveInterval:       cfg.Edge.KeepAlive,
		MaxSubscriptionsPerConn: cfg.Edge.MaxSubscriptionsPerConn,
		SendQueueLen:            cfg.Edge.SendQueueLen,
	}
	if ec.TLSCertFile == "" && !ec.PlainHTTP {
		ec.DevTLSDir = filepath.Join(cfg.DataDir, "tls")
	}
	return ec
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

func build(name string, cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	b, ok := builders[name]
	if !ok {
		return nil, fmt.Errorf("unknown service %q (one of %v)", name, ServiceNames())
	}
	r, err := b(cfg, nc, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}
