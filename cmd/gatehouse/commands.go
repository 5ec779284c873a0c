package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/gcfloor"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/meter"
)

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("dev", stderr, &c)
	addr := fs.String("addr", "", "edge listen `address` (default 127.0.0.1:8443: dev stays on this machine)")
	natsListen := fs.String("nats-listen", "", "also open the embedded NATS server on this `host:port` (default: in-process only)")
	echoDelay := fs.Duration("echo-delay", 20*time.Millisecond, "pause between the echo model's chunks, so streaming is visible")
	user := fs.String("user", "alice", "`sub` of the development token printed at start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	switch {
	case *addr != "":
		cfg.Edge.Addr = *addr
	case cfg.Edge.Addr == config.Default().Edge.Addr:
		cfg.Edge.Addr = devAddr
	}
	if *natsListen != "" {
		cfg.NATS.Listen = *natsListen
	}
	if cfg.Chat.EchoDelay == 0 {
		cfg.Chat.EchoDelay = *echoDelay
	}
	log := newLogger(stderr, cfg.LogLevel)
	dev, err := stack.NewDev(cfg, log)
	if err != nil {
		return err
	}
	defer gcfloor.Start(uint64(cfg.GCHeapFloor)).Stop()
	errc := make(chan error, 1)
	go func() { errc <- dev.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-dev.Ready():
	}
	token, err := dev.Issuer().Mint(authz.DevClaims{Sub: *user})
	if err != nil {
		return err
	}
	url := dev.EdgeURL()
	fmt.Fprintf(stdout, "\nGatehouse is running.\n\n  web & API   %s\n  realtime    %s/event/realtime\n", url, strings.Replace(url, "https://", "wss://", 1))
	if ca := dev.CAFile(); ca != "" {
		fmt.Fprintf(stdout, "  dev CA      %s   (trust it: NODE_EXTRA_CA_CERTS=%s, or import it in your browser)\n", ca, ca)
	}
	if n := dev.NATSURL(); n != "" {
		fmt.Fprintf(stdout, "  NATS        %s\n", n)
	}
	fmt.Fprintf(stdout, "  ledger      %s\n\nDevelopment token for %q (valid 12h; mint more with `gatehouse token --sub NAME`):\n\n%s\n\n", ledgerName(cfg.Meter.DatabaseURL, cfg.SQLitePath()), *user, token)
	return <-errc
}

// devAddr is where `gatehouse dev` listens unless told otherwise: loopback
// only, so a laptop's development gateway is not reachable from the network.
const devAddr = "127.0.0.1:8443"

func ledgerName(dbURL, sqlitePath string) string {
	if dbURL != "" {
		return "postgres"
	}
	return "sqlite " + sqlitePath
}

func cmdService(ctx context.Context, name string, args []string, stderr io.Writer) error {
	var c common
	fs := newFlagSet(name, stderr, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.loadValid()
	if err != nil {
		return err
	}
	defer gcfloor.Start(uint64(cfg.GCHeapFloor)).Stop()
	return stack.RunService(ctx, name, cfg, newLogger(stderr, cfg.LogLevel))
}

func cmdToken(args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("token", stderr, &c)
	sub := fs.String("sub", "", "subject (user id) of the token; required")
	tenant := fs.String("tenant", "", "tenant claim")
	plan := fs.String("plan", "", "plan claim")
	groups := fs.String("groups", "", "comma-separated groups")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("token: --sub is required (for example --sub alice)")
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return fmt.Errorf("token: --ttl %s must be between 1s and 720h", *ttl)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	iss, err := authz.LoadOrCreateDevIssuer(cfg.DataDir, cfg.Authz.DevIssuerURL, cfg.Authz.Audience)
	if err != nil {
		return err
	}
	var gs []string
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	tok, err := iss.Mint(authz.DevClaims{Sub: *sub, Tenant: *tenant, Plan: *plan, Groups: gs, TTL: *ttl})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("migrate", stderr, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.loadValid()
	if err != nil {
		return err
	}
	if err := meter.Migrate(ctx, stack.MeterConfig(cfg, newLogger(stderr, cfg.LogLevel))); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied to", ledgerName(cfg.Meter.DatabaseURL, cfg.SQLitePath()))
	return nil
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("config", stderr, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.loadValid()
	if err != nil {
		return err
	}
	out, err := cfg.Masked()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("healthcheck", stderr, &c)
	url := fs.String("url", "https://127.0.0.1:8443/readyz", "readiness `url` to probe (certificate not verified: loopback use)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
