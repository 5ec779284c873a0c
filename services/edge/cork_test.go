package edge

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// countingConn records each Write it gets.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

func TestCorkConnBatchesWrites(t *testing.T) {
	t.Parallel()
	inner := &countingConn{}
	c := &corkConn{Conn: inner}
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	c.cork()
	for _, s := range []string{"b", "c", "d"} {
		if n, err := c.Write([]byte(s)); n != 1 || err != nil {
			t.Fatalf("corked write = %d, %v", n, err)
		}
	}
	if len(inner.writes) != 1 {
		t.Fatalf("%d writes reached the connection while corked, want 1 (before cork)", len(inner.writes))
	}
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(inner.writes) != 2 || string(inner.writes[1]) != "bcd" {
		t.Fatalf("writes = %q, want [a bcd]", inner.writes)
	}
	if err := c.uncork(time.Second); err != nil || len(inner.writes) != 2 {
		t.Fatalf("an empty uncork wrote: %q %v", inner.writes, err)
	}
	c.cork()
	big := make([]byte, maxKeptCorkBuf+1)
	_, _ = c.Write(big)
	_ = c.uncork(time.Second)
	if c.buf != nil {
		t.Fatal("a batch buffer above maxKeptCorkBuf was kept")
	}
}

func TestCorkConnReportsWriteErrors(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	_ = b.Close()
	c := &corkConn{Conn: a}
	c.cork()
	_, _ = c.Write([]byte("x"))
	if err := c.uncork(time.Second); err == nil {
		t.Fatal("uncork on a closed connection reported no error")
	}
	_ = a.Close()
}

// TestFramePipelinedWithUpgrade sends the upgrade request and the first
// WebSocket frame in one write, so the frame is already buffered by net/http
// when the connection is hijacked; it must not be lost.
func TestFramePipelinedWithUpgrade(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	host := strings.TrimPrefix(e.svc.URL(), "https://")
	conn, err := tls.Dial("tcp", host, e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + PathRealtime + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + Subprotocol + ", " + headerProtocol(map[string]string{"host": "h", "Authorization": "alice"}, false) + "\r\n\r\n"
	payload := []byte(`{"type":"connection_init"}`)
	key := []byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, key...)
	for i, b := range payload {
		frame = append(frame, b^key[i%4])
	}
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The first server frame must be connection_ack (unmasked text frame).
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || hdr[1]&0x80 != 0 || hdr[1] >= 126 {
		t.Fatalf("unexpected frame header %x", hdr)
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"connection_ack"`) {
		t.Fatalf("first frame %s, want connection_ack", body)
	}
}
