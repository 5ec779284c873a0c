package netpoll

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn wraps an accepted *net.TCPConn. It reads and writes like the TCPConn
// (blocking, deadlines honoured) until [Conn.SetNonBlocking] is called; from
// then on Read never waits: it does one read(2) on the socket and returns
// [ErrWouldBlock] when nothing is buffered, or io.EOF when the peer has shut
// down its side. Writes always stay blocking and honour write deadlines.
//
// Conn is safe for concurrent use like the TCPConn: one reader and any
// number of writers may run at once. Conns are made by [Listener].
type Conn struct {
	tcp      *net.TCPConn
	raw      syscall.RawConn // from tcp.SyscallConn, cached: Read uses it on every call
	nonblock atomic.Bool
	rd       rawRead // state of non-blocking reads
}

// rawRead is the state of a non-blocking read(2), kept on the Conn so that
// Read does not allocate a callback and its results on every call.
type rawRead struct {
	mu    sync.Mutex // held across one raw read and the use of its results
	buf   []byte
	n     int
	errno error
	fn    func(fd uintptr) bool // reads into buf, sets n and errno; made once
}

var _ net.Conn = (*Conn)(nil)

// newConn wraps tc. SyscallConn fails only for a nil *net.TCPConn, which
// Accept never returns, so newConn reports that case as an error too.
func newConn(tc *net.TCPConn) (*Conn, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &Conn{tcp: tc, raw: raw}
	c.rd.fn = c.rd.read
	return c, nil
}

// Read reads like net.TCPConn.Read until SetNonBlocking; afterwards it does
// not wait and returns ErrWouldBlock (unwrapped) when no byte is available.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.nonblock.Load() {
		return c.tcp.Read(b)
	}
	return c.readNow(b)
}

// Write writes like net.TCPConn.Write: it blocks until b is written or the
// write deadline passes, in either mode.
func (c *Conn) Write(b []byte) (int, error) { return c.tcp.Write(b) }

// Close closes the connection. A [Registration] for it needs no Deregister
// for the kernel's sake (closing the socket drops it from the epoll set), but
// Deregister frees the poller's bookkeeping.
func (c *Conn) Close() error { return c.tcp.Close() }

// CloseWrite shuts down the writing side of the TCP connection.
func (c *Conn) CloseWrite() error { return c.tcp.CloseWrite() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.tcp.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.tcp.RemoteAddr() }

// SetDeadline sets the read and write deadlines. In non-blocking mode a read
// deadline that has passed makes Read fail with a timeout instead of reading.
func (c *Conn) SetDeadline(t time.Time) error { return c.tcp.SetDeadline(t) }

// SetReadDeadline sets the read deadline; see [Conn.SetDeadline].
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tcp.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tcp.SetWriteDeadline(t) }

// SyscallConn returns the raw connection of the underlying TCPConn.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// Listener wraps every accepted *net.TCPConn of l in a *[Conn]; other
// connections pass through unchanged. Close and Addr are l's.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	nc, err := newConn(tc)
	if err != nil {
		return c, nil // cannot happen for an accepted conn; serve it unwrapped
	}
	return nc, nil
}
