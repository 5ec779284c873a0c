package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

// testTimeout bounds every wait in these tests; it is a deadlock guard, not
// an assertion about speed.
const testTimeout = 10 * time.Second

type env struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn // the test's own connection (publishing, inspecting)
	edgeNC *nats.Conn // the edge's connection
	js     jetstream.JetStream
	svc    *Service
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startEnv runs NATS, the contract authz and an edge over dev TLS. mod may
// adjust the edge config.
func startEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	edgeNC := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, bus.NewSubjects(""), bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	startContractAuthz(t, nc, "")

	cfg := Config{
		Addr:      "127.0.0.1:0",
		DevTLSDir: t.TempDir(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg, edgeNC)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{t: t, srv: srv, nc: nc, edgeNC: edgeNC, js: js, svc: svc, done: make(chan error, 1)}
	e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}, Timeout: testTimeout}
	runWith(t, e)
	return e
}

// runWith runs e.svc until the test ends and waits until it is ready.
func runWith(t *testing.T, e *env) {
	t.Helper()
	runCtx, runCancel := context.WithCancel(context.Background())
	e.cancel = runCancel
	go func() { e.done <- e.svc.Run(runCtx) }()
	t.Cleanup(func() {
		e.stop()
		e.client.CloseIdleConnections()
	})
	select {
	case <-e.svc.Ready():
	case err := <-e.done:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("edge not ready")
	}
}

// stop shuts the edge down and checks Run returned nil. Idempotent.
func (e *env) stop() {
	e.t.Helper()
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(2 * ShutdownTimeout):
		e.t.Error("Run did not return after shutdown")
	}
}

func (e *env) tlsConfig() *tls.Config {
	if e.svc.CAFile() == "" {
		return nil
	}
	pem, err := os.ReadFile(e.svc.CAFile())
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		e.t.Fatal("bad CA file")
	}
	return &tls.Config{RootCAs: pool}
}

func (e *env) wsURL() string {
	u := e.svc.URL()
	u = strings.Replace(u, "https://", "wss://", 1)
	u = strings.Replace(u, "http://", "ws://", 1)
	return u + PathRealtime
}

// headerProtocol encodes an authorization object as the header- subprotocol.
func headerProtocol(auth map[string]string, padded bool) string {
	b, _ := json.Marshal(auth)
	enc := base64.RawURLEncoding
	if padded {
		enc = base64.URLEncoding
	}
	return "header-" + enc.EncodeToString(b)
}

// dial opens a socket authenticated with token (via the header- subprotocol
// when token is not empty).
func (e *env) dial(token string) *wsClient {
	e.t.Helper()
	protos := []string{Subprotocol}
	if token != "" {
		protos = append(protos, headerProtocol(map[string]string{"host": "localhost", "Authorization": token}, false))
	}
	return e.dialWith(protos, nil)
}

func (e *env) dialWith(protos []string, hdr http.Header) *wsClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{
		HTTPClient:   e.client,
		Subprotocols: protos,
		HTTPHeader:   hdr,
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial: %v (status %d)", err, status)
	}
	ws.SetReadLimit(16 << 20)
	c := &wsClient{t: e.t, ws: ws}
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

// connect dials and completes connection_init / connection_ack.
func (e *env) connect(token string) *wsClient {
	e.t.Helper()
	c := e.dial(token)
	c.send(map[string]any{"type": "connection_init"})
	ack := c.next()
	if ack["type"] != "connection_ack" {
		e.t.Fatalf("want connection_ack, got %v", ack)
	}
	return c
}

type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

type frame map[string]any

// read returns the next frame including keep-alives, or the read error.
func (c *wsClient) read() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return f, nil
}

// next returns the next frame that is not a keep-alive.
func (c *wsClient) next() frame {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if f["type"] != "ka" {
			return f
		}
	}
}

// closed reads until the socket closes and returns the close error,
// skipping other frames.
func (c *wsClient) closed() websocket.CloseError {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		return websocket.CloseError{Code: -1, Reason: err.Error()}
	}
}

func (c *wsClient) subscribe(id, ch string) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "id": id, "channel": ch})
	return c.next()
}

func (c *wsClient) publish(id, ch string, events ...any) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "publish", "id": id, "channel": ch, "events": events})
	return c.next()
}

// firstError returns errors[0] of a frame.
func firstError(t *testing.T, f frame) map[string]any {
	t.Helper()
	errs, ok := f["errors"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("frame has no errors: %v", f)
	}
	return errs[0].(map[string]any)
}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
