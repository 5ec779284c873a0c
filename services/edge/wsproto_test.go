package edge

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawSocket is a hand-driven WebSocket client: it writes frames as given
// (masked or not, any bits) and reads the server's frames, so the server's
// handling of every framing rule can be checked.
type rawSocket struct {
	t    *testing.T
	conn *tls.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, e *env, token string) *rawSocket {
	t.Helper()
	host := strings.TrimPrefix(e.svc.URL(), "https://")
	conn, err := tls.Dial("tcp", host, e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + PathRealtime + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + Subprotocol + ", " + headerProtocol(map[string]string{"host": "h", "Authorization": token}, false) + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &rawSocket{t: t, conn: conn, br: br}
}

// frame writes one frame: b0 is FIN|RSV|opcode, masked says whether the
// payload is masked (clients must mask).
func (r *rawSocket) frame(b0 byte, masked bool, payload []byte) {
	r.t.Helper()
	b := []byte{b0}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		key := []byte{0x12, 0x34, 0x56, 0x78}
		b = append(b, key...)
		for i, c := range payload {
			b = append(b, c^key[i%4])
		}
	} else {
		b = append(b, payload...)
	}
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawSocket) text(s string) { r.frame(0x81, true, []byte(s)) }

// read returns the next server frame's opcode and payload.
func (r *rawSocket) read() (byte, []byte) {
	r.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		r.t.Fatalf("server frame is masked: %x", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		_, _ = io.ReadFull(r.br, ext[:])
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		_, _ = io.ReadFull(r.br, ext[:])
		n = binary.BigEndian.Uint64(ext[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.br, p); err != nil {
		r.t.Fatalf("reading a payload: %v", err)
	}
	return h[0], p
}

// expectClose reads frames until the close frame and checks its code; the
// server must then drop the connection.
func (r *rawSocket) expectClose(code uint16, reason string) {
	r.t.Helper()
	for {
		op, p := r.read()
		if op&0x0f != 0x8 {
			continue
		}
		if op != 0x88 || len(p) < 2 || binary.BigEndian.Uint16(p) != code || !strings.Contains(string(p[2:]), reason) {
			r.t.Fatalf("close frame %x %q, want code %d with %q", op, p, code, reason)
		}
		break
	}
	// Complete the closing handshake; the server then closes the TCP
	// connection.
	r.frame(0x88, true, []byte{0x03, 0xe8})
	if _, err := r.br.ReadByte(); err == nil {
		r.t.Fatal("the server sent more after its close frame")
	}
}

func (r *rawSocket) init() {
	r.t.Helper()
	r.text(`{"type":"connection_init"}`)
	if op, p := r.read(); op != 0x81 || !strings.Contains(string(p), "connection_ack") {
		r.t.Fatalf("got %x %s, want connection_ack", op, p)
	}
}

// TestWebSocketFraming covers the framing rules of RFC 6455 the server
// enforces, each ending in its close code, and the messages it accepts.
func TestWebSocketFraming(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.ReadLimit = 4096; c.MaxEventBytes = 2048 })
	for _, tc := range []struct {
		name   string
		send   func(r *rawSocket)
		code   uint16
		reason string
	}{
		{"unmasked frame", func(r *rawSocket) { r.frame(0x81, false, []byte(`{"type":"connection_init"}`)) }, 1002, "mask"},
		{"reserved bit", func(r *rawSocket) { r.frame(0xc1, true, []byte(`{}`)) }, 1002, "RSV"},
		{"unknown opcode", func(r *rawSocket) { r.frame(0x83, true, []byte(`{}`)) }, 1002, "opcode"},
		{"fragmented ping", func(r *rawSocket) { r.frame(0x09, true, []byte("p")) }, 1002, "control"},
		{"continuation first", func(r *rawSocket) { r.frame(0x80, true, []byte("x")) }, 1002, "continuation"},
		{"message above ReadLimit", func(r *rawSocket) { r.text(strings.Repeat("x", 4097)) }, 1009, "4096"},
		{"fragments above ReadLimit", func(r *rawSocket) {
			r.frame(0x01, true, []byte(strings.Repeat("x", 3000)))
			r.frame(0x80, true, []byte(strings.Repeat("x", 3000)))
		}, 1009, "4096"},
		{"invalid UTF-8", func(r *rawSocket) { r.frame(0x81, true, []byte{'"', 0xff, '"'}) }, 1007, "UTF-8"},
		{"client close", func(r *rawSocket) { r.frame(0x88, true, []byte{0x03, 0xe9, 'b', 'y', 'e'}) }, 1000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, e, "alice")
			r.init()
			tc.send(r)
			r.expectClose(tc.code, tc.reason)
		})
	}

	t.Run("ping, fragments and binary", func(t *testing.T) {
		r := dialRaw(t, e, "alice")
		r.init()
		r.frame(0x89, true, []byte("hi"))
		if op, p := r.read(); op != 0x8a || string(p) != "hi" {
			t.Fatalf("got %x %q, want a pong with the ping's payload", op, p)
		}
		// A subscribe in three fragments with a ping between them.
		msg := `{"type":"subscribe","id":"s1","channel":"/Outbound-Messages/alice"}`
		r.frame(0x01, true, []byte(msg[:10]))
		r.frame(0x00, true, []byte(msg[10:30]))
		r.frame(0x89, true, nil)
		r.frame(0x80, true, []byte(msg[30:]))
		if op, _ := r.read(); op != 0x8a {
			t.Fatalf("got %x, want the pong first", op)
		}
		if op, p := r.read(); op != 0x81 || !strings.Contains(string(p), "subscribe_success") {
			t.Fatalf("got %x %s, want subscribe_success", op, p)
		}
		r.frame(0x82, true, []byte{1, 2, 3})
		if op, p := r.read(); op != 0x81 || !strings.Contains(string(p), "binary messages are not supported") {
			t.Fatalf("got %x %s, want an error about binary messages", op, p)
		}
		// The socket still works, one byte at a time.
		b := []byte{0x81, 0x80 | 27, 0, 0, 0, 0}
		b = append(b, `{"type":"connection_init"} `...)
		for i := range b {
			if _, err := r.conn.Write(b[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if op, p := r.read(); op != 0x81 || !strings.Contains(string(p), "already initialised") {
			t.Fatalf("got %x %s, want the error for a second connection_init", op, p)
		}
	})
}
