package main

import (
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/gatehouse-ai/gatehouse/internal/config"
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

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
