package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// RunService runs the one named service against the NATS server at
// cfg.NATS.URL until ctx ends.
func RunService(ctx context.Context, name string, cfg config.Config, log *slog.Logger) error {
	if _, ok := builders[name]; !ok {
		return fmt.Errorf("unknown service %q (one of %v)", name, ServiceNames())
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	nc, err := bus.Connect(ctx, cfg.NATS.URL, "gatehouse-"+name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	svc, err := build(name, cfg, nc, log)
	if err != nil {
		return err
	}
	log.Info("service starting", "svc", name, "nats", nc.ConnectedUrlRedacted())
	err = svc.Run(ctx)
	if derr := nc.Drain(); derr != nil && err == nil {
		log.Debug("nats drain", "err", derr)
	}
	return err
}
