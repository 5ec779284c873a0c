package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/edge"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dev runs the whole system in one process: an embedded NATS server with
// JetStream and every service connected to it in-process. Methods other
// than Run are safe to call concurrently once Ready is closed.
type Dev struct {
	cfg   config.Config
	log   *slog.Logger
	ready chan struct{}

	mu     sync.Mutex
	srv    *server.Server
	edge   *edge.Service
	issuer *authz.DevIssuer
}

// NewDev validates the configuration; it starts nothing.
func NewDev(cfg config.Config, log *slog.Logger) (*Dev, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Dev{cfg: cfg, log: log, ready: make(chan struct{})}, nil
}

// Ready is closed once every service runs and the edge listens.
func (d *Dev) Ready() <-chan struct{} { return d.ready }

// EdgeURL is the edge's base URL (https://localhost:port), valid after Ready.
func (d *Dev) EdgeURL() string { return d.edge.URL() }

// CAFile is the development CA that signed the edge's certificate, or "".
func (d *Dev) CAFile() string { return d.edge.CAFile() }

// Issuer is the development token issuer, valid after Ready.
func (d *Dev) Issuer() *authz.DevIssuer { return d.issuer }

// NATSURL is the embedded server's client URL when a listener was asked
// for, else "".
func (d *Dev) NATSURL() string {
	if d.cfg.NATS.Listen == "" {
		return ""
	}
	return d.srv.ClientURL()
}

// Server returns the embedded NATS server (for in-process clients in tests).
func (d *Dev) Server() *server.Server { return d.srv }

// Run starts everything and blocks until ctx ends or a service fails, then
// stops every service and the NATS server.
func (d *Dev) Run(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	issuer, err := authz.LoadOrCreateDevIssuer(cfg.DataDir, cfg.Authz.DevIssuerURL, cfg.Authz.Audience)
	if err != nil {
		return fmt.Errorf("dev issuer: %w", err)
	}
	d.issuer = issuer

	ec := bus.EmbeddedConfig{Dir: filepath.Join(cfg.DataDir, "nats"), Logger: d.log.With("svc", "nats")}
	if need := cfg.NATS.MaxRequestBytes + bus.RequestHeaderHeadroom; need > bus.EmbeddedMaxPayload {
		ec.MaxPayload = int32(need) // validated: at most bus.MaxRequestBytesCeiling
	}
	if cfg.NATS.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.NATS.Listen)
		if err != nil {
			return fmt.Errorf("nats.listen: %w", err)
		}
		ec.Host = host
		if ec.Port, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("nats.listen: port %q: %w", port, err)
		}
		if ec.Port == 0 {
			ec.Port = -1
		}
	}
	srv, err := bus.StartEmbedded(ec)
	if err != nil {
		return err
	}
	d.srv = srv
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()

	// Declare streams once before the services race to.
	setup, err := bus.ConnectInProcess(srv, "gatehouse-setup", d.log)
	if err != nil {
		return err
	}
	js, err := jetstream.New(setup)
	if err == nil {
		err = bus.EnsureStreams(ctx, js, bus.NewSubjects(cfg.NATS.Prefix), StreamOptions(cfg.NATS))
	}
	setup.Close()
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for _, name := range ServiceNames() {
		nc, err := bus.ConnectInProcess(srv, "gatehouse-"+name, d.log)
		if err != nil {
			cancel(err)
			break
		}
		conns = append(conns, nc)
		svc, err := build(name, cfg, nc, d.log)
		if err != nil {
			cancel(err)
			break
		}
		if e, ok := svc.(*edge.Service); ok {
			d.edge = e
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc.Run(ctx); err != nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	if d.edge != nil {
		select {
		case <-d.edge.Ready():
			probe, err := bus.ConnectInProcess(srv, "gatehouse-probe", d.log)
			if err == nil {
				err = waitServing(ctx, probe, bus.NewSubjects(cfg.NATS.Prefix))
				probe.Close()
			}
			if err == nil {
				close(d.ready)
			} else if ctx.Err() == nil {
				cancel(err)
			}
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		d.log.Error("services did not stop within 45s")
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}
