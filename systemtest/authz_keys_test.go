package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// runCLI runs the gatehouse binary and returns its stdout.
func runCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestCLIKeyLifecycle is Done-when 3: a key created with `gatehouse keys
// create` works over WebSocket and HTTP, `gatehouse keys list` shows its
// last use, and after `gatehouse keys revoke` the socket that used it is
// closed within 5 s and the key is refused everywhere.
func TestCLIKeyLifecycle(t *testing.T) {
	t.Parallel()
	bin := buildGatehouse(t)
	cfg := devConfig(t, "")
	cfg.NATS.Listen = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.Authz.KeyLastUsedFlush = 50 * time.Millisecond
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	common := []string{"--nats-url", dev.NATSURL(), "--data", cfg.DataDir}

	secret := strings.TrimSpace(runCLI(t, bin, append([]string{"keys", "create", "--owner", "carol", "--name", "laptop", "--plan", "pro"}, common...)...))
	if !strings.HasPrefix(secret, "gh_") {
		t.Fatalf("keys create printed %q, want a gh_ key", secret)
	}
	var listed bus.KeyListResponse
	if err := json.Unmarshal([]byte(runCLI(t, bin, append([]string{"keys", "list", "--owner", "carol", "--json"}, common...)...)), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Keys) != 1 || listed.Keys[0].Name != "laptop" || !listed.Keys[0].LastUsedAt.IsZero() || !strings.Contains(secret, listed.Keys[0].ID) {
		t.Fatalf("keys list = %+v", listed.Keys)
	}
	keyID := listed.Keys[0].ID
	auth := map[string]string{"x-api-key": secret}

	// The key works: connect, subscribe to its owner's channel, chat.
	c, err := dialAuth(ctx, t, dev.EdgeURL(), dev.CAFile(), auth)
	if err != nil {
		t.Fatalf("connect with the key: %v", err)
	}
	if f := c.op(ctx, "subscribe", "out", "/Outbound-Messages/carol", auth); f.Type != "subscribe_success" {
		t.Fatalf("subscribe: %+v", f)
	}
	f := c.op(ctx, "publish", "p1", "/Inbound-Messages/carol", auth, referenceRequest(t, "hello key", "echo", "c1"))
	if f.Type != "publish_success" {
		t.Fatalf("publish: %+v", f)
	}
	checkAnswer(t, collectAnswer(ctx, t, c, "out"), f.Successful[0].Identifier, "hello key")
	client := httpClientTrusting(t, dev.CAFile())
	if r := postEvent(ctx, t, client, dev.EdgeURL(), auth, "/Inbound-Messages/carol", referenceRequest(t, "over http", "echo", "k2")); r.Status != http.StatusOK {
		t.Fatalf("POST /event with the key: %+v", r)
	}

	// Its last use shows in the list.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(runCLI(t, bin, append([]string{"keys", "list", "--owner", "carol", "--json"}, common...)...)), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed.Keys) == 1 && !listed.Keys[0].LastUsedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last use never shown: %+v", listed.Keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if table := runCLI(t, bin, append([]string{"keys", "list"}, common...)...); !strings.Contains(table, keyID) || !strings.Contains(table, "LAST USED") {
		t.Fatalf("keys list table:\n%s", table)
	}

	// Revoke: the socket is closed within 5 s.
	revoked := time.Now()
	if out := runCLI(t, bin, append([]string{"keys", "revoke", keyID, "--reason", "lost laptop"}, common...)...); !strings.Contains(out, "revoked "+keyID) {
		t.Fatalf("keys revoke printed %q", out)
	}
	closeCtx, closeCancel := context.WithTimeout(ctx, 5*time.Second)
	defer closeCancel()
	for {
		_, err := c.next(closeCtx)
		if err == nil {
			continue // frames still in flight (the last answer, keep-alives, connection_error)
		}
		if closeCtx.Err() != nil {
			t.Fatalf("socket still open 5s after revocation")
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("socket ended with %v, want a close frame", err)
		}
		t.Logf("socket closed %v after revocation: %d %s", time.Since(revoked).Round(time.Millisecond), ce.Code, ce.Reason)
		break
	}
	if _, err := dialAuth(ctx, t, dev.EdgeURL(), dev.CAFile(), auth); err == nil {
		t.Fatal("revoked key still connects")
	}
	if r := postEvent(ctx, t, client, dev.EdgeURL(), auth, "/Inbound-Messages/carol", referenceRequest(t, "x", "echo", "k3")); r.Status != http.StatusUnauthorized || len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "revoked") {
		t.Fatalf("POST /event with the revoked key: %+v", r)
	}
}
