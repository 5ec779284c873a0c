package stack

import (
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats.go"
)

func buildChat(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return chat.New(chat.Config{
		Prefix:      cfg.NATS.Prefix,
		Logger:      log,
		Concurrency: cfg.Chat.Concurrency,
		EchoDelay:   cfg.Chat.EchoDelay,
	}, nc)
}
