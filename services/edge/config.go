package edge

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Defaults applied by [Config] when a field is zero.
const (
	DefaultAddr                    = ":8443"
	DefaultConnectionTimeout       = 5 * time.Minute // AppSync's connectionTimeoutMs of 300000
	DefaultKeepAliveInterval       = 30 * time.Second
	DefaultInitTimeout             = 10 * time.Second
	DefaultMaxSubscriptionsPerConn = 200
	DefaultMaxEventsPerPublish     = 5
	DefaultMaxEventBytes           = 240 << 10
	DefaultReadLimit               = 3 << 19 // 1.5 MiB
	DefaultSendQueueLen            = 256
	DefaultWriteTimeout            = 10 * time.Second
	DefaultAuthzTimeout            = 3 * time.Second
	DefaultMaxConnections          = 100_000
	DefaultMaxConnectionsPerIdent  = 100
	DefaultPublishRate             = 50.0
	DefaultPublishBurst            = 100
	DefaultMaxDeliverBytes         = 1 << 20
)

// Limits that are not configurable.
const (
	// MaxKeepAliveInterval is exclusive: AppSync clients expect a "ka" at
	// least every 60 s.
	MaxKeepAliveInterval = 60 * time.Second
	// ShutdownTimeout bounds the graceful part of shutdown (closing sockets
	// and finishing HTTP requests) before connections are cut.
	ShutdownTimeout = 10 * time.Second
	// StreamSetupTimeout bounds declaring the JetStream streams at start.
	StreamSetupTimeout = 30 * time.Second
	// FlushTimeout bounds waiting for the NATS server to confirm new
	// subscriptions before subscribe_success.
	FlushTimeout = 5 * time.Second
	// PublishTimeout bounds waiting for one JetStream acknowledgement.
	PublishTimeout = 5 * time.Second
	// RecentRequests is how many published request ids a socket remembers
	// so it can cancel them when it goes away.
	RecentRequests = 32
	// MaxDecisionCache bounds the authz decisions one socket caches; the
	// cache is cleared when full.
	MaxDecisionCache = 256
	// DeliveryBatch is the most events of one subject queued to its sockets
	// before the writer pool is woken for them, while more events of that
	// subject are already waiting in the process (so a burst is written as
	// a few large writes, not one write per event); capped at half of
	// SendQueueLen. With no event waiting the writers are woken at once.
	DeliveryBatch = 32
)

// Config configures the edge. The zero value (plus exactly one of the TLS
// choices) is usable: every zero field takes the default named next to it.
type Config struct {
	// Prefix is the NATS subject prefix; "" means "gh".
	Prefix string
	// Streams are the options of the streams the edge declares at start
	// (INBOUND, which it publishes chat requests to, and USAGE). Every
	// process that declares them must use the same; the zero value keeps
	// them on file storage.
	Streams bus.StreamOptions
	// Logger receives the service's logs; nil means slog.Default(). It is
	// scoped with svc=edge.
	Logger *slog.Logger
	// ID identifies this edge process in reply subjects; "" means a fresh
	// bus.NewID(). It must be a single subject token.
	ID string

	// Addr is the listen address, default ":8443". "127.0.0.1:0" picks a
	// free port (tests); [Service.Addr] reports the one chosen.
	Addr string
	// TLSCertFile and TLSKeyFile serve TLS with this certificate (PEM).
	TLSCertFile, TLSKeyFile string
	// DevTLSDir, when no certificate is given, holds a generated local CA
	// ("ca.pem", CN "Gatehouse Development CA") and a server certificate
	// for localhost, 127.0.0.1 and ::1 signed by it. They are created once
	// and reused while valid; trust ca.pem in the browser.
	DevTLSDir string
	// PlainHTTP serves without TLS, for running behind a TLS-terminating
	// proxy. Exactly one of TLSCertFile/TLSKeyFile, DevTLSDir and PlainHTTP
	// must be set.
	PlainHTTP bool

	// AllowedOrigins is the Origin allowlist for WebSocket upgrades and
	// CORS on POST /event. Entries are matched case-insensitively with
	// path.Match against the origin's host ("app.example.com",
	// "*.example.com") or, when they contain "://", against
	// "scheme://host". A request whose Origin host equals its Host is
	// always allowed, and so is a request without Origin (not a browser).
	// Empty means ANY origin is allowed: fine for development, but set it in
	// production, since browsers send credentials-bearing requests from any
	// page.
	AllowedOrigins []string

	// ConnectionTimeout is sent as connectionTimeoutMs in connection_ack:
	// how long a client waits for a "ka" before giving up. Default 5m.
	ConnectionTimeout time.Duration
	// KeepAliveInterval is how often "ka" is sent; default 30s, must be
	// below 60s and below ConnectionTimeout.
	KeepAliveInterval time.Duration
	// InitTimeout is how long a socket may take between the upgrade and
	// connection_init before it is closed; default 10s.
	InitTimeout time.Duration
	// MaxSubscriptionsPerConn bounds subscriptions per socket; default 200.
	MaxSubscriptionsPerConn int
	// MaxEventsPerPublish bounds the events of one publish; default 5.
	MaxEventsPerPublish int
	// MaxEventBytes bounds one event (the JSON text inside the event
	// string); default 240 KiB.
	MaxEventBytes int
	// ReadLimit bounds one WebSocket message; default 1.5 MiB.
	ReadLimit int64
	// SendQueueLen is the capacity of each socket's queue of outgoing
	// frames; default 256. A socket whose queue is full is closed as a slow
	// consumer.
	SendQueueLen int
	// WriteTimeout bounds writing one batch of a socket's queued frames (and
	// the final frames at close); default 10s. A socket that cannot take its
	// batch in this time is disconnected.
	WriteTimeout time.Duration
	// DebugAddr, when set, serves the Go profiler (net/http/pprof, under
	// /debug/pprof/) on this address without TLS or authentication, for
	// measuring the edge. Default "" serves nothing. Bind it to loopback
	// only: profiles expose the process's internals.
	DebugAddr string
	// DisableMetrics turns off GET /metrics (Prometheus metrics of this
	// edge, on its listener and without authentication). Default false:
	// metrics are served. They carry no per-user labels.
	DisableMetrics bool
	// AuthzTimeout bounds each request to authz; default 3s.
	AuthzTimeout time.Duration

	// MaxConnections bounds the WebSocket connections this process holds;
	// an upgrade beyond it is refused with 503 and Retry-After. Default
	// 100000.
	MaxConnections int
	// MaxConnectionsPerIdentity bounds the sockets one caller (issuer and
	// sub, or API key id) may hold at once on this process; the socket
	// beyond it gets a connection_error (LimitExceededException) and is
	// closed. Default 100 (or MaxConnections, when that is lower).
	MaxConnectionsPerIdentity int
	// PublishRate is the sustained rate of published events per second a
	// socket may send (a token bucket refilled at this rate); default 50.
	// A publish that exceeds it is refused with publish_error
	// (LimitExceededException) and nothing of it is published. POST /event
	// gets the same bucket per caller (see [MaxHTTPRateCallers]) and a 429.
	PublishRate float64
	// PublishBurst is the token bucket's size: how many events a socket
	// may publish at once after being idle; default 100. It must be at
	// least MaxEventsPerPublish.
	PublishBurst int
	// MaxDeliverBytes bounds one event delivered to subscribers; a larger
	// message on a subscribed subject is not delivered and each matching
	// subscription gets a broadcast_error instead. Default 1 MiB.
	MaxDeliverBytes int
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setDur(&c.ConnectionTimeout, DefaultConnectionTimeout)
	setDur(&c.KeepAliveInterval, DefaultKeepAliveInterval)
	setDur(&c.InitTimeout, DefaultInitTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.AuthzTimeout, DefaultAuthzTimeout)
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&c.MaxSubscriptionsPerConn, DefaultMaxSubscriptionsPerConn)
	setInt(&c.MaxEventsPerPublish, DefaultMaxEventsPerPublish)
	setInt(&c.MaxEventBytes, DefaultMaxEventBytes)
	setInt(&c.SendQueueLen, DefaultSendQueueLen)
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	setInt(&c.MaxConnections, DefaultMaxConnections)
	setInt(&c.MaxConnectionsPerIdentity, min(DefaultMaxConnectionsPerIdent, c.MaxConnections))
	setInt(&c.PublishBurst, DefaultPublishBurst)
	setInt(&c.MaxDeliverBytes, DefaultMaxDeliverBytes)
	if c.PublishRate == 0 {
		c.PublishRate = DefaultPublishRate
	}
	return c
}

// Validate reports the first problem with c (after defaults are applied),
// wrapped in [ErrConfig].
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if c.Prefix != "" && !bus.ValidPrefix(c.Prefix) {
		return bad("Prefix %q must be dot-separated tokens of letters, digits, '-' and '_'", c.Prefix)
	}
	if c.ID != "" && !bus.ValidToken(c.ID) {
		return bad("ID %q must be 1-128 letters, digits, '-' or '_'", c.ID)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return bad("TLSCertFile and TLSKeyFile must be set together")
	}
	modes := 0
	if c.TLSCertFile != "" {
		modes++
	}
	if c.DevTLSDir != "" {
		modes++
	}
	if c.PlainHTTP {
		modes++
	}
	if modes != 1 {
		return bad("set exactly one of TLSCertFile/TLSKeyFile, DevTLSDir and PlainHTTP (got %d)", modes)
	}
	for _, o := range c.AllowedOrigins {
		if o == "" {
			return bad("AllowedOrigins has an empty entry")
		}
		if _, err := matchOrigin(o, "x"); err != nil {
			return bad("AllowedOrigins entry %q: %v", o, err)
		}
	}
	switch {
	case c.ConnectionTimeout < 0, c.KeepAliveInterval < 0, c.InitTimeout < 0, c.WriteTimeout < 0, c.AuthzTimeout < 0:
		return bad("durations must not be negative")
	case c.KeepAliveInterval >= MaxKeepAliveInterval:
		return bad("KeepAliveInterval %v must be below %v", c.KeepAliveInterval, MaxKeepAliveInterval)
	case c.KeepAliveInterval >= c.ConnectionTimeout:
		return bad("KeepAliveInterval %v must be below ConnectionTimeout %v", c.KeepAliveInterval, c.ConnectionTimeout)
	case c.MaxSubscriptionsPerConn < 0, c.MaxEventsPerPublish < 0, c.MaxEventBytes < 0, c.SendQueueLen < 0, c.ReadLimit < 0:
		return bad("limits must not be negative")
	case int64(c.MaxEventBytes) > c.ReadLimit:
		return bad("MaxEventBytes %d must not exceed ReadLimit %d", c.MaxEventBytes, c.ReadLimit)
	case c.MaxConnections < 0:
		return bad("MaxConnections %d must not be negative", c.MaxConnections)
	case c.MaxConnectionsPerIdentity < 0:
		return bad("MaxConnectionsPerIdentity %d must not be negative", c.MaxConnectionsPerIdentity)
	case c.MaxConnectionsPerIdentity > c.MaxConnections:
		return bad("MaxConnectionsPerIdentity %d must not exceed MaxConnections %d", c.MaxConnectionsPerIdentity, c.MaxConnections)
	case c.PublishRate < 0:
		return bad("PublishRate %v must not be negative", c.PublishRate)
	case c.PublishBurst < c.MaxEventsPerPublish:
		return bad("PublishBurst %d must be at least MaxEventsPerPublish %d", c.PublishBurst, c.MaxEventsPerPublish)
	case c.MaxDeliverBytes < 0:
		return bad("MaxDeliverBytes %d must not be negative", c.MaxDeliverBytes)
	}
	return nil
}
