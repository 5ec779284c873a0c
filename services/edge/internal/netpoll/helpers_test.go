package netpoll_test

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
)

const (
	// timeout bounds every wait for something that must happen.
	timeout = 10 * time.Second
	// quiet is how long a test watches for a call that must not happen,
	// after a barrier has shown the wait loop got past the event.
	quiet = 50 * time.Millisecond
)

func requirePoller(t testing.TB) {
	t.Helper()
	if !netpoll.Supported() {
		// CI runs on Linux, where the poller must exist.
		if os.Getenv("CI") == "true" {
			t.Fatalf("netpoll: no poller on %s under CI", runtime.GOOS)
		}
		t.Skipf("netpoll: no poller on %s", runtime.GOOS)
	}
}

// newPoller returns a poller closed at the end of the test.
func newPoller(t testing.TB) *netpoll.Poller {
	t.Helper()
	requirePoller(t)
	p, err := netpoll.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// listen returns a netpoll Listener on 127.0.0.1, closed at the end of the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return netpoll.Listener(ln)
}

// pair returns the accepted server side of a fresh TCP connection as a
// *netpoll.Conn and the client side; both are closed at the end of the test.
func pair(t testing.TB) (*netpoll.Conn, *net.TCPConn) {
	t.Helper()
	ln := listen(t)
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	a := <-ch
	if a.err != nil {
		t.Fatalf("accept: %v", a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	server, ok := a.c.(*netpoll.Conn)
	if !ok {
		t.Fatalf("Listener accepted %T, want *netpoll.Conn", a.c)
	}
	return server, client.(*net.TCPConn)
}

// counter is an onReady that counts its calls and signals each on C.
type counter struct {
	n atomic.Int64
	C chan struct{}
}

func newCounter() *counter { return &counter{C: make(chan struct{}, 64)} }

func (c *counter) onReady() {
	c.n.Add(1)
	c.C <- struct{}{}
}

// wait fails the test unless onReady is called within timeout.
func (c *counter) wait(t testing.TB, what string) {
	t.Helper()
	select {
	case <-c.C:
	case <-time.After(timeout):
		t.Fatalf("%s: onReady not called within %v", what, timeout)
	}
}

// quiet fails the test if onReady is called. It first runs barrier, which
// makes the poller handle a later event, so that a wrong call would already
// have been dispatched, then allows the dispatched goroutine a moment to run.
func (c *counter) quiet(t testing.TB, what string, barrier func()) {
	t.Helper()
	if barrier != nil {
		barrier()
	}
	select {
	case <-c.C:
		t.Fatalf("%s: onReady called, want no call", what)
	case <-time.After(quiet):
	}
}

// register registers server on p with a new counter as its onReady; the
// registration is removed when the test ends (Deregister is idempotent).
func register(t testing.TB, p *netpoll.Poller, server *netpoll.Conn) (*counter, *netpoll.Registration) {
	t.Helper()
	c := newCounter()
	reg, err := p.Register(server, c.onReady)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(reg.Deregister)
	return c, reg
}

// barrier registers a second connection on p and returns a func that makes
// it readable and waits for its onReady, proving that the wait loop has
// handled every event that was pending before.
func barrier(t testing.TB, p *netpoll.Poller) func() {
	t.Helper()
	server, client := pair(t)
	if err := server.SetNonBlocking(); err != nil {
		t.Fatal(err)
	}
	c, reg := register(t, p, server)
	return func() {
		t.Helper()
		if _, err := client.Write([]byte{'x'}); err != nil {
			t.Fatalf("barrier write: %v", err)
		}
		c.wait(t, "barrier")
		drain(t, server)
		if err := reg.Arm(); err != nil {
			t.Fatalf("barrier Arm: %v", err)
		}
	}
}

// drain reads c (in non-blocking mode) until ErrWouldBlock and returns the
// bytes; any other error fails the test.
func drain(t testing.TB, c *netpoll.Conn) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, netpoll.ErrWouldBlock) {
			return got
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
}

func write(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

func timeAfter() <-chan time.Time { return time.After(timeout) }
