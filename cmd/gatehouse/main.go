// Command gatehouse is the single Gatehouse binary: `gatehouse dev` runs the
// whole gateway in one process; `gatehouse edge|authz|chat|meter|cache` runs
// one service against a NATS server; the rest are admin commands. It only
// wires configuration to the services (see internal/stack).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gatehouse — a self-hosted AI gateway

Usage:
  gatehouse dev [flags]                 run everything in one process (embedded NATS, SQLite, TLS on :8443)
  gatehouse edge|authz|chat|meter|cache run one service against NATS_URL
  gatehouse token --sub NAME [flags]    mint a development token
  gatehouse keys create|list|revoke     manage API keys (talks to authz over NATS)
  gatehouse usage [flags]               usage from the ledger (--group-by, --csv, --json)
  gatehouse migrate                     apply ledger migrations and exit
  gatehouse config                      print the effective configuration (secrets masked)
  gatehouse healthcheck [--url URL]     exit 0 when the edge answers /readyz (for container health checks)
  gatehouse version                     print the version

Configuration: --config FILE (or GATEHOUSE_CONFIG), then GATEHOUSE_* environment variables
(GATEHOUSE_EDGE__ADDR=:9443), then flags. Run "gatehouse <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return withTelemetry(ctx, cmd, stderr, func() error { return cmdDev(ctx, rest, stdout, stderr) })
	case "edge", "authz", "chat", "meter", "cache":
		return withTelemetry(ctx, cmd, stderr, func() error { return cmdService(ctx, cmd, rest, stderr) })
	case "token":
		return cmdToken(rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "usage":
		return cmdUsage(ctx, rest, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "config":
		return cmdConfig(rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "gatehouse", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// telemetryFlushTimeout bounds flushing the last spans at exit.
const telemetryFlushTimeout = 5 * time.Second

// withTelemetry sets up tracing for the process running service (see
// package telemetry: OTLP export only when OTEL_EXPORTER_OTLP_* asks for
// it), runs fn, and flushes the spans when fn returns.
func withTelemetry(ctx context.Context, service string, stderr io.Writer, fn func() error) error {
	shutdown, err := telemetry.Setup(ctx, service)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
		}
	}()
	return fn()
}
