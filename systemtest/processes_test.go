package systemtest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

// buildGatehouse compiles the gatehouse binary into a temp dir.
func buildGatehouse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSeparateProcesses runs edge, authz, chat, meter and cache as separate
// OS processes sharing one NATS server, and does the round trip through them.
func TestSeparateProcesses(t *testing.T) {
	t.Parallel()
	bin := buildGatehouse(t)
	srv := natstest.Start(t)
	dataDir := t.TempDir()
	port := freePort(t)
	env := append(os.Environ(),
		"GATEHOUSE_EDGE__ADDR=127.0.0.1:"+strconv.Itoa(port),
		"GATEHOUSE_METER__FLUSH_INTERVAL=20ms",
		"GATEHOUSE_LOG_LEVEL=info",
	)
	common := []string{"--data", dataDir, "--nats-url", srv.ClientURL()}

	tokenCmd := exec.Command(bin, append([]string{"token", "--sub", "alice"}, common...)...)
	tokenCmd.Env = env
	out, err := tokenCmd.Output()
	if err != nil {
		t.Fatalf("gatehouse token: %v", err)
	}
	token := strings.TrimSpace(string(out))

	type proc struct {
		name string
		cmd  *exec.Cmd
		logs *processLog
		done chan error
	}
	var procs []*proc
	for _, name := range []string{"authz", "meter", "cache", "chat", "edge"} {
		p := &proc{name: name, logs: &processLog{}, done: make(chan error, 1)}
		p.cmd = exec.Command(bin, append([]string{name}, common...)...)
		p.cmd.Env = env
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs = append(procs, p)
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case err := <-p.done:
				if err != nil {
					t.Errorf("%s exited with %v after SIGTERM; logs:\n%s", p.name, err, p.logs)
				}
			case <-time.After(40 * time.Second):
				_ = p.cmd.Process.Kill()
				t.Errorf("%s did not stop within 40s of SIGTERM; logs:\n%s", p.name, p.logs)
			}
		}
	}
	t.Cleanup(stopAll)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s logs ---\n%s", p.name, p.logs)
			}
		}
	})

	base := "https://localhost:" + strconv.Itoa(port)
	caFile := filepath.Join(dataDir, "tls", "ca.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitReady(ctx, t, base, caFile, token)

	events, requestID := chatRoundTrip(ctx, t, base, caFile, token, "alice")
	rows := waitLedgerRows(t, "sqlite", filepath.Join(dataDir, "ledger.db"), requestID)
	checkLedger(t, rows, events, "alice")

	stopAll()
}

// waitReady polls the edge's /readyz and then a full AppSync handshake
// (which needs authz) until both work.
func waitReady(ctx context.Context, t *testing.T, base, caFile, token string) {
	t.Helper()
	var last error
	for {
		if _, err := os.Stat(caFile); err == nil {
			resp, err := httpClientTrusting(t, caFile).Get(base + "/readyz")
			last = err
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					c, err := tryDialAppSync(ctx, t, base, caFile, token)
					if err == nil {
						c.conn.CloseNow()
						return
					}
					last = err
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("edge at %s not ready: %v (last error: %v)", base, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processLog collects a child process's output. exec copies the output
// in its own goroutine while the test may print the log (a failure before
// the process has stopped), so every access holds the lock.
type processLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *processLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns the output so far.
func (l *processLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
