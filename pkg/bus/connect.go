package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Connection defaults, chosen for services that must survive a NATS restart.
const (
	// DefaultReconnectWait is the pause between reconnect attempts.
	DefaultReconnectWait = 250 * time.Millisecond
	// DefaultReconnectBufSize is how much a connection buffers while
	// reconnecting before publishes fail.
	DefaultReconnectBufSize = 32 << 20
	// DefaultConnectTimeout bounds the first connect when ctx has no deadline.
	DefaultConnectTimeout = 30 * time.Second
)

// Options returns the connection options every service uses: a name,
// reconnect forever with jitter, a large reconnect buffer, and logging of
// connection state changes.
func Options(name string, log *slog.Logger) []nats.Option {
	if log == nil {
		log = slog.Default()
	}
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(DefaultReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(DefaultReconnectBufSize),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
}

// Connect dials url, retrying until ctx ends (or [DefaultConnectTimeout]
// when ctx has no deadline), so services may start before NATS does.
func Connect(ctx context.Context, url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultConnectTimeout)
		defer cancel()
	}
	opts := append(Options(name, log), extra...)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: connect to %s: %w (last error: %v)", url, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ConnectInProcess connects to an embedded server without a network socket.
func ConnectInProcess(srv *server.Server, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(Options(name, log), nats.InProcessServer(srv))
	opts = append(opts, extra...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: in-process connect: %w", err)
	}
	return nc, nil
}
