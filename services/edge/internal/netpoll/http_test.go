package netpoll_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
)

// TestHTTPThenHijack serves ordinary keep-alive requests over netpoll.Conn
// with net/http, then hijacks one connection and uses it non-blocking with
// the poller, the way the WebSocket upgrade does.
func TestHTTPThenHijack(t *testing.T) {
	t.Parallel()
	p := newPoller(t)
	ln := listen(t)
	hijacked := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain ok")
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		hijacked <- serveHijacked(w, p)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: timeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: timeout}
	for range 3 { // the same keep-alive connection, read by net/http in blocking mode
		resp, err := hc.Get("http://" + ln.Addr().String() + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "plain ok" {
			t.Fatalf("GET /plain = %q, %v", body, err)
		}
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	write(t, c, "GET /hijack HTTP/1.1\r\nHost: test\r\n\r\n")
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "hijacked\n" {
		t.Fatalf("read %q, %v; want hijacked", line, err)
	}
	write(t, c, "ping")
	pong := make([]byte, 4)
	if _, err := io.ReadFull(br, pong); err != nil || string(pong) != "pong" {
		t.Fatalf("read %q, %v; want pong", pong, err)
	}
	select {
	case err := <-hijacked:
		if err != nil {
			t.Fatalf("hijacked side: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("hijack handler did not finish")
	}
}

func serveHijacked(w http.ResponseWriter, p *netpoll.Poller) error {
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer nc.Close()
	c, ok := nc.(*netpoll.Conn)
	if !ok {
		return errors.New("hijacked conn is not a *netpoll.Conn")
	}
	if err := c.SetNonBlocking(); err != nil {
		return err
	}
	if _, err := c.Read(make([]byte, 1)); err != netpoll.ErrWouldBlock {
		return errors.New("idle hijacked conn did not return ErrWouldBlock")
	}
	ready := make(chan struct{}, 1)
	reg, err := p.Register(c, func() { ready <- struct{}{} })
	if err != nil {
		return err
	}
	defer reg.Deregister()
	if _, err := io.WriteString(c, "hijacked\n"); err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 16)
	for len(got) < 4 {
		select {
		case <-ready:
		case <-time.After(timeout):
			return errors.New("no readiness for ping")
		}
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err == netpoll.ErrWouldBlock {
				break
			}
			if err != nil {
				return err
			}
		}
		if err := reg.Arm(); err != nil {
			return err
		}
	}
	if string(got) != "ping" {
		return errors.New("hijacked side read " + string(got) + ", want ping")
	}
	_, err = io.WriteString(c, "pong")
	return err
}
