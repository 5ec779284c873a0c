package edge

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// The WebSocket opening handshake (RFC 6455 section 4.2), done by the edge
// itself rather than a library so that after it the socket is only what
// an idle socket needs (see readers.go): no library connection, no
// buffered reader or writer, no goroutine.

// websocketGUID is the key suffix of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshakeTimeout bounds writing the 101 response.
const handshakeTimeout = 10 * time.Second

// upgradeError is a refused upgrade: the HTTP status and a message that
// says what the client must change.
type upgradeError struct {
	status int
	msg    string
}

func (e *upgradeError) Error() string { return e.msg }

// checkUpgrade validates a WebSocket upgrade request and returns the
// Sec-WebSocket-Accept value and the subprotocol to echo ("" for none).
func checkUpgrade(r *http.Request) (accept, subprotocol string, err *upgradeError) {
	if !r.ProtoAtLeast(1, 1) || r.ProtoMajor != 1 {
		return "", "", &upgradeError{http.StatusBadRequest, "a WebSocket upgrade needs HTTP/1.1, got " + r.Proto}
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return "", "", &upgradeError{http.StatusBadRequest, `a WebSocket upgrade needs "Connection: Upgrade"`}
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return "", "", &upgradeError{http.StatusUpgradeRequired, fmt.Sprintf("unsupported Sec-WebSocket-Version %.20q: this server speaks version 13", v)}
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if raw, derr := base64.StdEncoding.DecodeString(key); derr != nil || len(raw) != 16 {
		return "", "", &upgradeError{http.StatusBadRequest, "Sec-WebSocket-Key must be 16 random bytes in base64"}
	}
	if headerHasToken(r.Header, "Sec-WebSocket-Protocol", Subprotocol) {
		subprotocol = Subprotocol
	}
	return acceptKey(key), subprotocol, nil
}

// acceptKey computes Sec-WebSocket-Accept for a client's key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// headerHasToken reports whether any of the comma-separated values of the
// header name contains token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// upgrade completes the handshake: it takes the connection over from
// net/http and writes the 101 response. It returns the connection and the
// bytes the client already sent after its request (net/http may have
// buffered them). On a refused request it answers with the error's status
// and returns the error.
func upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, []byte, error) {
	accept, subprotocol, uerr := checkUpgrade(r)
	if uerr != nil {
		if uerr.status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, uerr.msg, uerr.status)
		return nil, nil, uerr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "this connection cannot be upgraded", http.StatusInternalServerError)
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	pending, err := buffered(brw.Reader)
	if err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	resp := make([]byte, 0, 160)
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, accept...)
	if subprotocol != "" {
		resp = append(resp, "\r\nSec-WebSocket-Protocol: "...)
		resp = append(resp, subprotocol...)
	}
	resp = append(resp, "\r\n\r\n"...)
	_ = nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if _, err := nc.Write(resp); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("write handshake response: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nc, pending, nil
}

// buffered returns a copy of what br holds unread (nil when nothing).
func buffered(br *bufio.Reader) ([]byte, error) {
	n := br.Buffered()
	if n == 0 {
		return nil, nil
	}
	b, err := br.Peek(n)
	if err != nil {
		return nil, errors.New("reading the bytes sent after the upgrade request: " + err.Error())
	}
	return append([]byte(nil), b...), nil
}
