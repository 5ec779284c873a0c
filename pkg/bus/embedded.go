package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Dir holds JetStream data. Required.
	Dir string
	// Host is the listen address; default "127.0.0.1".
	Host string
	// Port is the client port. 0 means no network listener at all (in-process
	// connections only, see [ConnectInProcess]); -1 picks a free port.
	Port int
	// MaxMemory and MaxStore bound JetStream; 0 lets the server choose.
	MaxMemory int64
	MaxStore  int64
	// MaxPayload is the server's max_payload, the largest message;
	// default [EmbeddedMaxPayload].
	MaxPayload int32
	// ReadyTimeout bounds start-up; default 10s.
	ReadyTimeout time.Duration
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
}

// EmbeddedMaxPayload is the embedded server's default max_payload: chat
// requests with images up to 8 MiB less [RequestHeaderHeadroom] (a stock
// nats-server allows 1 MiB).
const EmbeddedMaxPayload = 8 << 20

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts connections. The caller owns it: call Shutdown and
// WaitForShutdown to stop it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("bus: embedded server: Dir is required for JetStream storage")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = EmbeddedMaxPayload
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName:         "gatehouse-embedded",
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		DontListen:         cfg.Port == 0,
		NoSigs:             true,
		MaxPayload:         cfg.MaxPayload,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(&serverLogger{log: cfg.Logger}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server not ready after %s", cfg.ReadyTimeout)
	}
	return srv, nil
}

// serverLogger routes nats-server logs through slog.
type serverLogger struct{ log *slog.Logger }

var _ server.Logger = (*serverLogger)(nil)

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
