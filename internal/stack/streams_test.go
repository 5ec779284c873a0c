package stack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStreamOptionsReachEveryService(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]jetstream.StorageType{"file": jetstream.FileStorage, "memory": jetstream.MemoryStorage} {
		cfg := config.Default()
		cfg.NATS.InboundStorage = name
		cfg.NATS.MaxRequestBytes = 3 << 20
		got := map[string]bus.StreamOptions{
			"stack": StreamOptions(cfg.NATS),
			"edge":  EdgeConfig(cfg, nil).Streams,
			"chat":  ChatConfig(cfg.NATS, cfg.Chat, nil).Streams,
			"meter": MeterConfig(cfg, nil).Streams,
		}
		for svc, opts := range got {
			if opts.InboundStorage != want {
				t.Errorf("nats.inbound_storage %s: %s declares INBOUND on %v", name, svc, opts.InboundStorage)
			}
			if opts.MaxRequestBytes != 3<<20 {
				t.Errorf("nats.max_request_bytes: %s has %d", svc, opts.MaxRequestBytes)
			}
		}
	}
}

// TestDevInboundStorage switches a `gatehouse dev` data directory from file
// to memory the way the error tells the operator to: the switch is refused
// while INBOUND exists on file, and works once it is deleted.
func TestDevInboundStorage(t *testing.T) {
	t.Parallel()
	cfg := devTestConfig(t)

	runDev(t, cfg, nil) // file, the default: INBOUND is created on file

	cfg.NATS.InboundStorage = "memory"
	dev, err := NewDev(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var se *bus.InboundStorageError
	if err := dev.Run(t.Context()); !errors.As(err, &se) || se.Have != jetstream.FileStorage || se.Want != jetstream.MemoryStorage {
		t.Fatalf("memory over an INBOUND on file: %v, want an InboundStorageError", err)
	}

	// nats stream rm INBOUND, on the dev server's store.
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: filepath.Join(cfg.DataDir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := bus.ConnectInProcess(srv, "rm", nil)
	if err == nil {
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			err = js.DeleteStream(t.Context(), "INBOUND")
		}
		nc.Close()
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	if err != nil {
		t.Fatalf("delete INBOUND: %v", err)
	}

	runDev(t, cfg, func(dev *Dev) {
		nc, err := bus.ConnectInProcess(dev.Server(), "check", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]jetstream.StorageType{"INBOUND": jetstream.MemoryStorage, "USAGE": jetstream.FileStorage} {
			st, err := js.Stream(t.Context(), name)
			if err != nil || st.CachedInfo().Config.Storage != want {
				t.Fatalf("%s: %v, want storage %v", name, err, want)
			}
		}
		// A chat request goes through INBOUND on memory.
		token, err := dev.Issuer().Mint(authz.DevClaims{Sub: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"model":"echo","messages":[{"role":"user","content":"through memory"}],"max_tokens":5}`)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, dev.EdgeURL()+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("chat request: %d %s", resp.StatusCode, b)
		}
	})
}

// runDev runs a dev stack on cfg until it is ready, calls check (if not
// nil) and stops it.
func runDev(t *testing.T, cfg config.Config, check func(*Dev)) {
	t.Helper()
	dev, err := NewDev(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- dev.Run(ctx) }()
	stop := func() error {
		cancel()
		return <-errc
	}
	select {
	case <-dev.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("dev stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not ready within 60s (stopped: %v)", stop())
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("dev: %v", err)
		}
	}()
	if check != nil {
		check(dev)
	}
}

// TestDevMaxRequestBytes sets nats.max_request_bytes above the embedded
// server's default max_payload: `gatehouse dev` raises the server's
// max_payload to carry it, and INBOUND takes messages that large.
func TestDevMaxRequestBytes(t *testing.T) {
	t.Parallel()
	cfg := devTestConfig(t)
	cfg.NATS.MaxRequestBytes = 12 << 20
	runDev(t, cfg, func(dev *Dev) {
		nc, err := bus.ConnectInProcess(dev.Server(), "check", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if got := nc.MaxPayload(); got != 12<<20+bus.RequestHeaderHeadroom {
			t.Errorf("embedded max_payload %d, want %d", got, 12<<20+bus.RequestHeaderHeadroom)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(t.Context(), "INBOUND")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.MaxMsgSize; got != 12<<20 {
			t.Fatalf("INBOUND MaxMsgSize %d, want %d", got, 12<<20)
		}
	})
}

// devTestConfig is the default configuration with a fresh data directory,
// quiet logs and a plain-HTTP edge on a free port.
func devTestConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.LogLevel = "error"
	cfg.Edge.Addr = "127.0.0.1:0"
	cfg.Edge.PlainHTTP = true
	return cfg
}
