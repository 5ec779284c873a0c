package stack

import (
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/nats-io/nats.go"
)

func buildAuthz(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return authz.New(authz.Config{
		Prefix:       cfg.NATS.Prefix,
		Logger:       log,
		DataDir:      cfg.DataDir,
		DevIssuerURL: cfg.Authz.DevIssuerURL,
		Audience:     cfg.Authz.Audience,
	}, nc)
}
