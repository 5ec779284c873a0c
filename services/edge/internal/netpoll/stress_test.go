package netpoll_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
)

// echoConn is the server side of one stress connection: onReady reads until
// ErrWouldBlock, echoes every byte, and re-arms; at EOF it deregisters,
// closes and reports how many bytes it saw.
type echoConn struct {
	mu       sync.Mutex // held by Register's caller until reg is set, then by onReady
	c        *netpoll.Conn
	reg      *netpoll.Registration
	received int
	buf      [7]byte // small, so every burst takes several reads
	done     chan<- echoResult
}

type echoResult struct {
	received int
	err      error
}

func (e *echoConn) onReady() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		n, err := e.c.Read(e.buf[:])
		if n > 0 {
			e.received += n
			if _, werr := e.c.Write(e.buf[:n]); werr != nil {
				e.finish(fmt.Errorf("echo write: %w", werr))
				return
			}
		}
		switch {
		case errors.Is(err, netpoll.ErrWouldBlock):
			if err := e.reg.Arm(); err != nil {
				e.finish(fmt.Errorf("Arm: %w", err))
			}
			return
		case err == io.EOF:
			e.finish(nil)
			return
		case err != nil:
			e.finish(fmt.Errorf("read: %w", err))
			return
		}
	}
}

func (e *echoConn) finish(err error) {
	e.reg.Deregister()
	e.c.Close()
	e.done <- echoResult{e.received, err}
}

// TestStress echoes 50 messages over each of 500 connections through
// register / read-until-ErrWouldBlock / Arm cycles, and checks that every
// byte arrives exactly once and in order.
func TestStress(t *testing.T) {
	const (
		conns = 500
		msgs  = 50
	)
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("stress test skipped in -short mode (it always runs under CI)")
	}
	p := newPoller(t)
	ln := listen(t)
	results := make(chan echoResult, conns)

	acceptErr := make(chan error, 1)
	go func() { // ends after conns accepts or on the first error
		for range conns {
			nc, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			c := nc.(*netpoll.Conn)
			if err := c.SetNonBlocking(); err != nil {
				acceptErr <- err
				return
			}
			e := &echoConn{c: c, done: results}
			e.mu.Lock()
			e.reg, err = p.Register(c, e.onReady)
			e.mu.Unlock()
			if err != nil {
				acceptErr <- err
				return
			}
		}
		acceptErr <- nil
	}()

	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			if err := stressClient(ln.Addr().String(), i, msgs); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if err := <-acceptErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	want := 0
	for i := range conns {
		for j := range msgs {
			want += len(message(i, j))
		}
	}
	total := 0
	deadline := time.After(timeout)
	for range conns {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("server conn: %v", r.err)
			}
			total += r.received
		case <-deadline:
			t.Fatalf("server conns not finished within %v", timeout)
		}
	}
	if total != want {
		t.Fatalf("server received %d bytes, want %d", total, want)
	}
}

// message is the j-th message of connection i: 1 to 300 bytes, contents
// depending on both.
func message(i, j int) []byte {
	b := make([]byte, 1+(i*31+j*97)%300)
	for k := range b {
		b[k] = byte(i + j*7 + k)
	}
	return b
}

// stressClient writes msgs messages from one goroutine while reading the
// echo on another, then half-closes and expects exactly the echo and EOF.
func stressClient(addr string, i, msgs int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * timeout)); err != nil {
		return err
	}
	var sent []byte
	for j := range msgs {
		sent = append(sent, message(i, j)...)
	}
	werr := make(chan error, 1)
	go func() { // ends when all messages are written or a write fails
		for j := range msgs {
			if _, err := c.Write(message(i, j)); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c) // the server closes after echoing everything
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, sent) {
		return fmt.Errorf("echo differs: got %d bytes, want %d", len(got), len(sent))
	}
	return nil
}
