package netpoll

import (
	"errors"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SetNonBlocking switches Read to non-blocking mode for the rest of the
// connection's life. Call it when no Read is in flight (for a server
// connection: after the HTTP hijack or the TLS handshake).
func (c *Conn) SetNonBlocking() error {
	c.nonblock.Store(true)
	return nil
}

// readNow does one read(2) through RawConn.Read with a callback that always
// returns true, so the runtime never parks the goroutine. RawConn.Read holds
// the fd's read lock and a reference, so the fd cannot be closed and reused
// during the call, and it fails first when the read deadline has passed.
func (c *Conn) readNow(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	rd := &c.rd
	rd.mu.Lock()
	rd.buf = b
	err := c.raw.Read(rd.fn)
	n, errno := rd.n, rd.errno
	rd.buf, rd.n, rd.errno = nil, 0, nil
	rd.mu.Unlock()
	if err != nil {
		return 0, c.opError(err) // closed, or read deadline passed
	}
	switch {
	case errno == nil && n > 0:
		return n, nil
	case errno == nil:
		return 0, io.EOF
	case errors.Is(errno, unix.EAGAIN):
		return 0, ErrWouldBlock
	default:
		return 0, c.opError(os.NewSyscallError("read", errno))
	}
}

// read is rawRead.fn: one read(2), retried only on EINTR.
func (rd *rawRead) read(fd uintptr) bool {
	for {
		rd.n, rd.errno = unix.Read(int(fd), rd.buf)
		if rd.errno != unix.EINTR {
			return true
		}
	}
}

// opError wraps err the way net.TCPConn.Read does, so callers can treat both
// modes' errors alike.
func (c *Conn) opError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		op.Op = "read"
		return op
	}
	return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
