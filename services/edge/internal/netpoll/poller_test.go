package netpoll_test

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
)

func TestReadyOncePerArm(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	bar := barrier(t, p)
	server, client := pair(t)
	if err := server.SetNonBlocking(); err != nil {
		t.Fatal(err)
	}
	c, reg := register(t, p, server)

	write(t, client, "a")
	c.wait(t, "first data")
	write(t, client, "b")
	c.quiet(t, "second data without Arm", bar)

	// Level-triggered: unread data is pending, so Arm fires again at once.
	if err := reg.Arm(); err != nil {
		t.Fatalf("Arm: %v", err)
	}
	c.wait(t, "Arm with pending data")
	if got := string(drain(t, server)); got != "ab" {
		t.Fatalf("read %q, want %q", got, "ab")
	}

	if err := reg.Arm(); err != nil {
		t.Fatalf("Arm: %v", err)
	}
	c.quiet(t, "Arm with nothing pending", bar)
	write(t, client, "c")
	c.wait(t, "data after Arm")
	if got := string(drain(t, server)); got != "c" {
		t.Fatalf("read %q, want %q", got, "c")
	}
	if n := c.n.Load(); n != 3 {
		t.Fatalf("onReady called %d times, want 3", n)
	}
}

func TestNonBlockingRead(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	server, client := pair(t)
	if err := server.SetNonBlocking(); err != nil {
		t.Fatalf("SetNonBlocking: %v", err)
	}
	buf := make([]byte, 64)
	if n, err := server.Read(buf); n != 0 || err != netpoll.ErrWouldBlock {
		t.Fatalf("Read on idle conn = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	if n, err := server.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}

	c, reg := register(t, p, server)
	write(t, client, "hello")
	c.wait(t, "data")
	if got := string(drain(t, server)); got != "hello" {
		t.Fatalf("read %q, want hello", got)
	}

	if err := reg.Arm(); err != nil {
		t.Fatalf("Arm: %v", err)
	}
	client.Close()
	c.wait(t, "peer close")
	if n, err := server.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after peer close = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestPeerCloseFires(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reset bool
	}{
		{name: "fin"},
		{name: "reset", reset: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPoller(t)
			server, client := pair(t)
			c, _ := register(t, p, server)
			if tt.reset {
				if err := client.SetLinger(0); err != nil {
					t.Fatal(err)
				}
			}
			client.Close()
			c.wait(t, "peer "+tt.name)

			if err := server.SetNonBlocking(); err != nil {
				t.Fatal(err)
			}
			_, err := server.Read(make([]byte, 8))
			switch {
			case tt.reset && (err == nil || err == io.EOF || errors.Is(err, netpoll.ErrWouldBlock)):
				t.Fatalf("Read after reset: %v, want a connection error", err)
			case !tt.reset && err != io.EOF:
				t.Fatalf("Read after FIN: %v, want io.EOF", err)
			}
		})
	}
}

func TestDeregisterStopsCalls(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	bar := barrier(t, p)
	server, client := pair(t)
	c, reg := register(t, p, server)
	reg.Deregister()
	reg.Deregister() // idempotent
	write(t, client, "late")
	c.quiet(t, "data after Deregister", bar)
	if err := reg.Arm(); err == nil {
		t.Fatal("Arm after Deregister succeeded, want an error")
	}
	c.quiet(t, "Arm after Deregister", bar)
}

func TestDeregisterFromOnReady(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	server, client := pair(t)
	done := make(chan struct{})
	var reg *netpoll.Registration
	regSet := make(chan struct{})
	reg, err := p.Register(server, func() {
		<-regSet
		reg.Deregister()
		server.Close()
		close(done)
	})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	close(regSet)
	write(t, client, "x")
	select {
	case <-done:
	case <-timeAfter():
		t.Fatal("onReady did not finish: Deregister from onReady blocked")
	}
	reg.Deregister()
}

func TestCloseStopsLoop(t *testing.T) {
	t.Parallel()
	requirePoller(t)
	p, err := netpoll.New()
	if err != nil {
		t.Fatal(err)
	}
	server, client := pair(t)
	c, reg := register(t, p, server)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	write(t, client, "after close")
	c.quiet(t, "data after Close", nil) // no barrier: the loop is gone
	if err := reg.Arm(); err == nil {
		t.Fatal("Arm after Close succeeded, want an error")
	}
	reg.Deregister() // must not touch the closed epoll fd
	if _, err := p.Register(server, c.onReady); err == nil {
		t.Fatal("Register after Close succeeded, want an error")
	}
}

func TestArmAfterConnClosed(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	server, client := pair(t)
	c, reg := register(t, p, server)
	write(t, client, "x")
	c.wait(t, "data")
	server.Close()
	if err := reg.Arm(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Arm after conn Close = %v, want net.ErrClosed", err)
	}
	reg.Deregister() // ignores the closed conn
}

// TestStaleRegistrationAfterClose closes a registered conn without
// Deregister, so that the next socket usually gets the same fd number, and
// checks that the old registration can neither arm nor remove the new one.
func TestStaleRegistrationAfterClose(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	bar := barrier(t, p)
	oldServer, _ := pair(t)
	old := newCounter()
	oldReg, err := p.Register(oldServer, old.onReady)
	if err != nil {
		t.Fatal(err)
	}
	oldServer.Close()

	server, client := pair(t)
	c, _ := register(t, p, server)
	if err := oldReg.Arm(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("stale Arm = %v, want net.ErrClosed", err)
	}
	oldReg.Deregister()
	write(t, client, "new")
	c.wait(t, "new conn after stale Deregister")
	old.quiet(t, "old registration", bar)
}

func TestErrWouldBlockIsTemporaryNetError(t *testing.T) {
	t.Parallel()
	var ne net.Error
	if !errors.As(netpoll.ErrWouldBlock, &ne) || !ne.Timeout() || !ne.Temporary() { //nolint:staticcheck // crypto/tls checks Temporary
		t.Fatalf("ErrWouldBlock = %#v, want a net.Error with Timeout and Temporary true", netpoll.ErrWouldBlock)
	}
}

func TestRegisterRejectsNil(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	server, _ := pair(t)
	if _, err := p.Register(nil, func() {}); err == nil {
		t.Error("Register(nil conn) succeeded")
	}
	if _, err := p.Register(server, nil); err == nil {
		t.Error("Register(nil onReady) succeeded")
	}
}
