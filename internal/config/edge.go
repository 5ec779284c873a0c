package config

import (
	"errors"
	"fmt"
	"time"
)

// Edge configures the public listener.
type Edge struct {
	// Addr is the listen address. Default :8443.
	Addr string `yaml:"addr"`
	// TLSCert and TLSKey are PEM files; without them a local development CA
	// and certificate are generated in DataDir/tls.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// PlainHTTP serves without TLS, for use behind a TLS-terminating proxy.
	PlainHTTP bool `yaml:"plain_http"`
	// AllowedOrigins is the WebSocket Origin allowlist; empty allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// KeepAlive is the interval of "ka" messages (< 60s). Default 30s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// MaxSubscriptionsPerConn bounds subscriptions per socket. Default 200.
	MaxSubscriptionsPerConn int `yaml:"max_subscriptions_per_conn"`
	// SendQueueLen bounds each socket's outgoing queue. Default 256.
	SendQueueLen int `yaml:"send_queue_len"`

	// The settings below take the edge's default when zero.

	// ConnectionTimeout is sent to clients as connectionTimeoutMs: how long
	// they wait for a "ka" before reconnecting. Default 5m; must exceed
	// keep_alive.
	ConnectionTimeout time.Duration `yaml:"connection_timeout"`
	// AuthDeadline is how long a socket may take from the upgrade to
	// connection_init before it is closed. Default 10s.
	AuthDeadline time.Duration `yaml:"auth_deadline"`
	// WriteTimeout bounds one WebSocket write; a client that does not read
	// for this long is disconnected. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ReadLimit bounds one incoming WebSocket message and one POST /event
	// body, in bytes. Default 1572864 (1.5 MiB).
	ReadLimit int64 `yaml:"read_limit"`
	// MaxConnections bounds the sockets one edge process holds; upgrades
	// beyond it get 503 with Retry-After. Default 100000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIdentity bounds the sockets one caller (sub, or API
	// key) holds on one edge process. Default 100.
	MaxConnectionsPerIdentity int `yaml:"max_connections_per_identity"`
	// PublishRate is the sustained number of events per second one socket
	// may publish (token bucket). Default 50.
	PublishRate float64 `yaml:"publish_rate"`
	// PublishBurst is the token bucket size: events one socket may publish
	// at once. Default 100; at least 5 (one full publish).
	PublishBurst int `yaml:"publish_burst"`
	// MaxDeliverBytes bounds one event delivered to subscribers; larger
	// ones become broadcast_error. Default 1048576 (1 MiB).
	MaxDeliverBytes int `yaml:"max_deliver_bytes"`
	// DebugAddr serves the Go profiler (/debug/pprof/, no TLS, no auth) on
	// this address, e.g. 127.0.0.1:6060. Default "" (off); loopback only.
	DebugAddr string `yaml:"debug_addr"`
	// Metrics serves Prometheus metrics at GET /metrics on the edge's
	// listener (no authentication; bounded labels, no per-user figures).
	// Default true; set false to turn the endpoint off.
	Metrics bool `yaml:"metrics"`
}

func (e Edge) validate() []error {
	var errs []error
	if (e.TLSCert == "") != (e.TLSKey == "") {
		errs = append(errs, errors.New("edge.tls_cert and edge.tls_key: set both or neither"))
	}
	if e.KeepAlive <= 0 || e.KeepAlive >= time.Minute {
		errs = append(errs, fmt.Errorf("edge.keep_alive: %s must be above 0 and below 60s (AppSync clients time out at 60s)", e.KeepAlive))
	}
	if e.MaxSubscriptionsPerConn < 1 {
		errs = append(errs, errors.New("edge.max_subscriptions_per_conn: must be at least 1"))
	}
	if e.SendQueueLen < 1 {
		errs = append(errs, errors.New("edge.send_queue_len: must be at least 1"))
	}
	for name, d := range map[string]time.Duration{"connection_timeout": e.ConnectionTimeout, "auth_deadline": e.AuthDeadline, "write_timeout": e.WriteTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("edge.%s: %s must not be negative (0 means the default)", name, d))
		}
	}
	if e.ConnectionTimeout != 0 && e.ConnectionTimeout <= e.KeepAlive {
		errs = append(errs, fmt.Errorf("edge.connection_timeout: %s must exceed edge.keep_alive %s", e.ConnectionTimeout, e.KeepAlive))
	}
	for name, n := range map[string]int64{"read_limit": e.ReadLimit, "max_connections": int64(e.MaxConnections),
		"max_connections_per_identity": int64(e.MaxConnectionsPerIdentity), "max_deliver_bytes": int64(e.MaxDeliverBytes)} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("edge.%s: %d must not be negative (0 means the default)", name, n))
		}
	}
	if e.ReadLimit != 0 && e.ReadLimit < 240<<10 {
		errs = append(errs, fmt.Errorf("edge.read_limit: %d must be at least 245760 (one 240 KiB event)", e.ReadLimit))
	}
	if e.MaxConnections != 0 && e.MaxConnectionsPerIdentity > e.MaxConnections {
		errs = append(errs, fmt.Errorf("edge.max_connections_per_identity: %d must not exceed edge.max_connections %d", e.MaxConnectionsPerIdentity, e.MaxConnections))
	}
	if e.PublishRate < 0 {
		errs = append(errs, fmt.Errorf("edge.publish_rate: %g must not be negative (0 means the default)", e.PublishRate))
	}
	if e.PublishBurst != 0 && e.PublishBurst < 5 {
		errs = append(errs, fmt.Errorf("edge.publish_burst: %d must be at least 5 (one publish of 5 events)", e.PublishBurst))
	}
	return errs
}
