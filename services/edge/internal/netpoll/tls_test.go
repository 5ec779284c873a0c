package netpoll_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/devtls"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
)

// testCert is the edge's development PKI (devtls: a CA and a server
// certificate for localhost and 127.0.0.1) in a temporary directory, and a
// pool that trusts its CA.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	paths, err := devtls.Ensure(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(paths.Cert, paths.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(paths.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("devtls CA is not PEM")
	}
	return cert, pool
}

// captureConn holds back what is written while capturing, so a test can
// send TLS records to the peer in pieces of its choice.
type captureConn struct {
	net.Conn
	capturing bool
	captured  bytes.Buffer
}

func (c *captureConn) Write(b []byte) (int, error) {
	if c.capturing {
		return c.captured.Write(b)
	}
	return c.Conn.Write(b)
}

// TestTLSOverNonBlockingConn runs tls.Server over a netpoll.Conn: handshake
// in blocking mode, then non-blocking reads while the client's records
// arrive in pieces, split inside a record header and inside payloads. The
// server's tls Read must return ErrWouldBlock mid-record and later the exact
// plaintext, and the connection must still work both ways afterwards.
func TestTLSOverNonBlockingConn(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()
			testTLS(t, version)
		})
	}
}

func testTLS(t *testing.T, version uint16) {
	p := newPoller(t)
	cert, pool := testCert(t)
	ln := tls.NewListener(listen(t), &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   version,
		MaxVersion:   version,
	})

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type accepted struct {
		c   *tls.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acc <- accepted{nil, err}
			return
		}
		tc := c.(*tls.Conn)
		acc <- accepted{tc, tc.HandshakeContext(ctx)}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cc := &captureConn{Conn: raw}
	client := tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	a := <-acc
	if a.err != nil {
		t.Fatalf("server accept/handshake: %v", a.err)
	}
	server := a.c
	defer server.Close()

	nc, ok := server.NetConn().(*netpoll.Conn)
	if !ok {
		t.Fatalf("tls.Conn wraps %T, want *netpoll.Conn", server.NetConn())
	}
	if err := nc.SetNonBlocking(); err != nil {
		t.Fatal(err)
	}
	ready := newCounter()
	reg, err := p.Register(nc, ready.onReady)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister()

	buf := make([]byte, 4096)
	if _, err := server.Read(buf); !errors.Is(err, netpoll.ErrWouldBlock) {
		t.Fatalf("tls Read on idle conn: %v, want ErrWouldBlock", err)
	}

	// Three records' worth of plaintext, captured as wire bytes.
	want := make([]byte, 40000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	cc.capturing = true
	if _, err := client.Write(want); err != nil {
		t.Fatal(err)
	}
	cc.capturing = false
	wire := cc.captured.Bytes()

	// Cut inside the first header (3 of 5 bytes), inside the first payload,
	// and then every 997 bytes, so cuts fall at arbitrary record offsets.
	cuts := []int{3, 100}
	for c := 1000; c < len(wire); c += 997 {
		cuts = append(cuts, c)
	}
	cuts = append(cuts, len(wire))
	var got []byte
	prev := 0
	for i, cut := range cuts {
		if _, err := raw.Write(wire[prev:cut]); err != nil {
			t.Fatalf("write piece %d: %v", i, err)
		}
		prev = cut
		ready.wait(t, "tls piece")
		for {
			n, err := server.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(err, netpoll.ErrWouldBlock) {
				break
			}
			if err != nil {
				t.Fatalf("tls Read after piece %d: %v", i, err)
			}
		}
		if i < 2 && len(got) != 0 {
			t.Fatalf("piece %d: got %d plaintext bytes from an incomplete record", i, len(got))
		}
		if err := reg.Arm(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
	}

	// The connection still works: a blocking write back, then close_notify.
	reply := []byte("all 40000 bytes arrived")
	if _, err := server.Write(reply); err != nil {
		t.Fatalf("server write: %v", err)
	}
	if err := client.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(reply))
	if _, err := io.ReadFull(client, back); err != nil || !bytes.Equal(back, reply) {
		t.Fatalf("client read %q, %v; want %q", back, err, reply)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	ready.wait(t, "close_notify")
	if _, err := server.Read(buf); err != io.EOF {
		t.Fatalf("tls Read after close_notify: %v, want io.EOF", err)
	}
}
