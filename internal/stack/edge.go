package stack

import (
	"log/slog"
	"path/filepath"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/edge"
	"github.com/nats-io/nats.go"
)

func buildEdge(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return edge.New(EdgeConfig(cfg, log), nc)
}

// EdgeConfig maps the configuration to the edge's.
func EdgeConfig(cfg config.Config, log *slog.Logger) edge.Config {
	ec := edge.Config{
		Prefix:                    cfg.NATS.Prefix,
		Streams:                   StreamOptions(cfg.NATS),
		Logger:                    log,
		Addr:                      cfg.Edge.Addr,
		TLSCertFile:               cfg.Edge.TLSCert,
		TLSKeyFile:                cfg.Edge.TLSKey,
		PlainHTTP:                 cfg.Edge.PlainHTTP,
		AllowedOrigins:            cfg.Edge.AllowedOrigins,
		KeepAliveInterval:         cfg.Edge.KeepAlive,
		MaxSubscriptionsPerConn:   cfg.Edge.MaxSubscriptionsPerConn,
		SendQueueLen:              cfg.Edge.SendQueueLen,
		ConnectionTimeout:         cfg.Edge.ConnectionTimeout,
		InitTimeout:               cfg.Edge.AuthDeadline,
		WriteTimeout:              cfg.Edge.WriteTimeout,
		ReadLimit:                 cfg.Edge.ReadLimit,
		MaxConnections:            cfg.Edge.MaxConnections,
		MaxConnectionsPerIdentity: cfg.Edge.MaxConnectionsPerIdentity,
		PublishRate:               cfg.Edge.PublishRate,
		PublishBurst:              cfg.Edge.PublishBurst,
		MaxDeliverBytes:           cfg.Edge.MaxDeliverBytes,
		DebugAddr:                 cfg.Edge.DebugAddr,
		DisableMetrics:            !cfg.Edge.Metrics,
	}
	if ec.TLSCertFile == "" && !ec.PlainHTTP {
		ec.DevTLSDir = filepath.Join(cfg.DataDir, "tls")
	}
	return ec
}
