package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/devtls"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/hub"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
)

// Service is the edge. Create it with [New] and start it with [Service.Run].
// Handle may be called before Run; Ready, Addr, URL and CAFile are safe to
// call from any goroutine.
type Service struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	// maxRequest is the largest chat request stored in INBOUND
	// ([bus.RequestLimit]).
	maxRequest int
	subj       bus.Subjects
	id         string
	mux        *http.ServeMux
	hub        *hub.Hub
	// writing counts the sockets' running writers (writers.go); Run
	// returns after the last one.
	writing sync.WaitGroup
	// poller wakes the sockets' readers (readers.go); nil where the
	// platform has none, and then readers counts their goroutines.
	poller  *netpoll.Poller
	readers sync.WaitGroup

	tlsConfig *tls.Config // nil for PlainHTTP
	caFile    string

	running atomic.Bool
	ready   chan struct{}
	addr    atomic.Value // string

	// mu guards conns, perIdent and draining.
	mu       sync.Mutex
	conns    map[*conn]struct{}
	perIdent map[string]int // sockets per identityKey
	draining bool
	connWG   sync.WaitGroup

	// revocations counts revocation broadcasts; a socket whose caches were
	// filled at an older count clears them before use.
	revocations atomic.Uint64
	control     []*nats.Subscription // owned by Run
	// idents caches the identities and decisions of HTTP callers.
	idents *identCache
	// httpRate limits POST /event per caller.
	httpRate *httpRateLimiter
	// metrics are served at PathMetrics (metrics.go).
	metrics *metrics
}

// New validates cfg, prepares TLS (generating the development certificate
// when DevTLSDir is set) and returns a Service. It starts no goroutines and
// opens no listener.
func New(cfg Config, nc *nats.Conn) (*Service, error) {
	if nc == nil {
		return nil, ErrNilConn
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.ID == "" {
		cfg.ID = bus.NewID()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("edge: jetstream: %w", err)
	}
	maxRequest, err := bus.RequestLimit(nc.MaxPayload(), cfg.Streams.MaxRequestBytes)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	s := &Service{
		cfg:        cfg,
		maxRequest: maxRequest,
		log:        cfg.Logger.With("svc", "edge"),
		nc:         nc,
		js:         js,
		subj:       bus.NewSubjects(cfg.Prefix),
		id:         cfg.ID,
		mux:        http.NewServeMux(),
		hub:        hub.New(nc, cfg.MaxDeliverBytes, min(DeliveryBatch, cfg.SendQueueLen/2)),
		ready:      make(chan struct{}),
		conns:      make(map[*conn]struct{}),
		perIdent:   make(map[string]int),
		httpRate:   newHTTPRateLimiter(cfg.PublishRate, cfg.PublishBurst, MaxHTTPRateCallers),
		idents:     newIdentCache(MaxIdentityCache),
	}
	s.metrics = newMetrics(func() float64 { return float64(s.hub.Subscribed()) })
	s.addr.Store("")
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Service) setupTLS() error {
	certFile, keyFile := s.cfg.TLSCertFile, s.cfg.TLSKeyFile
	switch {
	case s.cfg.PlainHTTP:
		return nil
	case s.cfg.DevTLSDir != "":
		p, err := devtls.Ensure(s.cfg.DevTLSDir, time.Now())
		if err != nil {
			return fmt.Errorf("%w: %w", ErrTLSSetup, err)
		}
		certFile, keyFile, s.caFile = p.Cert, p.Key, p.CA
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("%w: load %s: %w", ErrTLSSetup, certFile, err)
	}
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// WebSockets upgrade over HTTP/1.1 only.
		NextProtos: []string{"http/1.1"},
	}
	return nil
}

// Handle registers h on the service's mux (Go 1.22 patterns, for example
// "POST /v1/chat/completions"). It may be called before or during Run.
func (s *Service) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Ready is closed once the listener is open.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Addr returns the actual listen host:port; it is valid after Ready.
func (s *Service) Addr() string { return s.addr.Load().(string) }

// URL returns "https://localhost:<port>" (or "http://..." with PlainHTTP);
// it is valid after Ready.
func (s *Service) URL() string {
	_, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return ""
	}
	scheme := "https"
	if s.tlsConfig == nil {
		scheme = "http"
	}
	return scheme + "://localhost:" + port
}

// CAFile returns the path of the development CA certificate, or "" when
// none was generated.
func (s *Service) CAFile() string { return s.caFile }

// Run listens and serves until ctx ends, then shuts down gracefully: it
// stops accepting, closes every socket with 1001 (going away), waits up to
// [ShutdownTimeout] for sockets and HTTP requests to finish, and drops its
// NATS subscriptions. It returns nil after a clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	// Publishes to INBOUND need the stream; declare it rather than depend on
	// chat having started first (idempotent, every service may do this).
	sctx, cancel := context.WithTimeout(ctx, StreamSetupTimeout)
	err := bus.EnsureStreams(sctx, s.js, s.subj, s.cfg.Streams)
	cancel()
	if err != nil {
		s.hub.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("edge: %w", err)
	}
	if err := s.subscribeControl(); err != nil {
		s.hub.Close()
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.unsubscribeControl()
		s.hub.Close()
		return fmt.Errorf("edge: listen %s: %w", s.cfg.Addr, err)
	}
	s.addr.Store(ln.Addr().String())
	if netpoll.Supported() {
		p, err := netpoll.New()
		if err != nil {
			s.log.Warn("no readiness poller; each socket keeps a reader goroutine", "err", err)
		} else {
			s.poller = p
			defer p.Close() // after every socket is dropped (shutdown)
			ln = netpoll.Listener(ln)
		}
	}
	defer s.readers.Wait()
	if s.tlsConfig != nil {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	srv := &http.Server{
		Handler:           s.metrics.instrument(s.mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("edge listening", "addr", s.Addr(), "url", s.URL(), "id", s.id, "tls", s.tlsConfig != nil)
	close(s.ready)

	defer s.writing.Wait() // after shutdown: every socket is closed by then
	stopDebug, err := s.serveDebug()
	if err != nil {
		_ = ln.Close()
		s.unsubscribeControl()
		s.hub.Close()
		return err
	}
	defer stopDebug()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("edge: serve: %w", err)
	}
	s.shutdown(srv)
	if runErr == nil {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("edge: serve: %w", err)
		}
	}
	s.log.Info("edge stopped")
	return runErr
}

func (s *Service) shutdown(srv *http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()

	s.mu.Lock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(sctx) }()
	for _, c := range conns {
		c.fail(wsframe.CloseGoingAway, reasonShutdown, nil)
	}
	socketsDone := make(chan struct{})
	go func() { s.connWG.Wait(); close(socketsDone) }()
	select {
	case <-socketsDone:
	case <-sctx.Done():
		s.log.Warn("sockets did not close in time; cutting them")
		for _, c := range conns {
			_ = c.nc.Close()
		}
		<-socketsDone
	}
	if err := <-httpDone; err != nil {
		s.log.Warn("http shutdown", "err", err)
		_ = srv.Close()
	}
	s.unsubscribeControl()
	s.hub.Close()
}
