package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go"
)

// common holds the flags every command shares.
type common struct {
	configPath string
	dataDir    string
	natsURL    string
	logLevel   string
}

func newFlagSet(name string, stderr io.Writer, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.configPath, "config", os.Getenv("GATEHOUSE_CONFIG"), "YAML configuration `file`")
	fs.StringVar(&c.dataDir, "data", "", "data `dir` (default from configuration, ./.gatehouse)")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server `url` (default from NATS_URL or configuration)")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error")
	return fs
}

// load reads configuration and applies the common flags on top.
func (c *common) load() (config.Config, error) {
	cfg, err := config.Load(c.configPath, os.Environ())
	if err != nil {
		return cfg, err
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if c.natsURL != "" {
		cfg.NATS.URL = c.natsURL
	}
	if c.logLevel != "" {
		cfg.LogLevel = c.logLevel
	}
	return cfg, nil
}

// loadValid is load followed by validation, for commands that act on the
// configuration rather than only mint tokens or run dev.
func (c *common) loadValid() (config.Config, error) {
	cfg, err := c.load()
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// connectAdmin connects an admin command to the NATS server of cfg. The
// caller closes the connection.
func connectAdmin(ctx context.Context, cfg config.Config, cmd string, stderr io.Writer) (*nats.Conn, error) {
	nc, err := bus.Connect(ctx, cfg.NATS.URL, "gatehouse-"+cmd+"-cli", newLogger(stderr, "error"))
	if err != nil {
		return nil, fmt.Errorf("%s: connect to NATS at %s: %w", cmd, cfg.NATS.URL, err)
	}
	return nc, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
