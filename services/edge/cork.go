package edge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkConn lets a socket's writer send a whole batch of WebSocket messages
// with one write to the connection (one TLS record and one syscall where
// they fit) instead of one per message: between cork and uncork, writes are
// collected in memory. The websocket library flushes after every message,
// so batching has to happen below it. Safe for concurrent use (the reader
// goroutine may write control frames, such as a close reply, at any time).
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// maxKeptCorkBuf is the largest batch buffer a socket keeps between
// batches; an idle socket keeps none.
const maxKeptCorkBuf = 16 << 10

// Write implements net.Conn.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// appendText adds p to the batch as one WebSocket text message (a single
// final, unmasked frame, as a server sends it). The writer pool encodes its
// messages this way instead of through the websocket library, which costs a
// lock, a context timer and a flush per message; only the library's own
// writes (control frames: pong and close, and the final frames written at
// close) still go through it. Those are each one Write of at most
// hijackBufSize bytes, so under mu they never interleave with a message
// appended here. Call it between cork and uncork.
func (c *corkConn) appendText(p []byte) {
	c.mu.Lock()
	c.buf = appendTextFrame(c.buf, p)
	c.mu.Unlock()
}

// appendTextFrame appends p framed as a final, unmasked text frame
// (RFC 6455 section 5.2).
func appendTextFrame(b, p []byte) []byte {
	const finText = 0x80 | 0x1
	switch n := len(p); {
	case n <= 125:
		b = append(b, finText, byte(n))
	case n <= 0xffff:
		b = append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was collected, within timeout, and stops collecting.
func (c *corkConn) uncork(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.Conn.Write(c.buf)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if cap(c.buf) > maxKeptCorkBuf {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkingWriter hands the websocket library a hijacked connection wrapped
// in a corkConn.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn // set by Hijack
}

// Hijack implements http.Hijacker.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	// Small buffers: an idle socket keeps them for its whole life, while
	// the writer batches through the corkConn and large reads bypass
	// bufio. The writer net/http returns is fresh (nothing buffered); the
	// reader may hold bytes the client sent right after the upgrade, which
	// are carried over.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(nc, hijackBufSize)
	if len(pending) > 0 {
		// The library takes over what is buffered in the reader it gets
		// (and resets it), so the pending bytes must be buffered there,
		// not behind it: Peek pulls exactly them from the bytes.Reader
		// without touching the connection.
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), nc), max(hijackBufSize, len(pending)))
		if _, err := br.Peek(len(pending)); err != nil {
			_ = nc.Close()
			return nil, nil, err
		}
	}
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, hijackBufSize)), nil
}

// hijackBufSize is the size of the read and write buffers the WebSocket
// library gets for each socket (net/http's are 4 KiB).
const hijackBufSize = 512

var _ http.Hijacker = (*corkingWriter)(nil)
