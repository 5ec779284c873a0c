package edge

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAcceptKey checks the example of RFC 6455 section 1.3.
func TestAcceptKey(t *testing.T) {
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("acceptKey = %q, want %q", got, want)
	}
}

// TestUpgradeRefusals sends malformed upgrade requests; each is refused
// with its status and a message naming what is wrong, and no socket is
// opened.
func TestUpgradeRefusals(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	host := strings.TrimPrefix(e.svc.URL(), "https://")
	good := map[string]string{
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Key":      "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Protocol": Subprotocol,
	}
	for _, tc := range []struct {
		name, header, value string
		status              int
		msg                 string
	}{
		{"no connection upgrade", "Connection", "keep-alive", http.StatusBadRequest, "Connection: Upgrade"},
		{"old version", "Sec-WebSocket-Version", "8", http.StatusUpgradeRequired, "version 13"},
		{"short key", "Sec-WebSocket-Key", "c2hvcnQ=", http.StatusBadRequest, "16 random bytes"},
		{"no key", "Sec-WebSocket-Key", "", http.StatusBadRequest, "16 random bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET " + PathRealtime + " HTTP/1.1\r\nHost: " + host + "\r\n"
			for k, v := range good {
				if k == tc.header {
					v = tc.value
				}
				req += k + ": " + v + "\r\n"
			}
			resp := rawRequest(t, e, host, req+"\r\n")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.msg) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, body, tc.status, tc.msg)
			}
			if tc.status == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("426 without Sec-WebSocket-Version: 13: %v", resp.Header)
			}
		})
	}
	if n := e.svc.NumConnections(); n != 0 {
		t.Fatalf("%d sockets open after refused upgrades", n)
	}
}

func rawRequest(t *testing.T, e *env, host, req string) *http.Response {
	t.Helper()
	conn, err := tls.Dial("tcp", host, e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
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
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != Subprotocol {
		t.Fatalf("Sec-WebSocket-Protocol %q, want %q (the header- subprotocol is never echoed)", got, Subprotocol)
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
