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
	return errs
}
