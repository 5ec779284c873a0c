package meter_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/dbtest"
)

// dropProxy forwards TCP connections to upstream until cut, which closes
// every open connection and refuses new ones (accepting and closing them
// at once) until restore: Postgres as seen through a failing network.
type dropProxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	cuts  int // connections dropped or refused
}

func startProxy(t *testing.T, upstream string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.cuts++
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *dropProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var pipes sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
	}
	pipes.Go(func() { pipe(up, c) })
	pipes.Go(func() { pipe(c, up) })
	pipes.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut drops every connection and refuses new ones.
func (p *dropProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
		p.cuts++
	}
}

// restore accepts connections again.
func (p *dropProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *dropProxy) dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// TestPostgresOutageLosesNothing writes usage through a proxy that drops
// every Postgres connection for a while. Records produced before, during
// and after the outage (with redeliveries) all reach the ledger exactly
// once: the ledger equals what was produced.
func TestPostgresOutageLosesNothing(t *testing.T) {
	t.Parallel()
	var pg dbtest.Backend
	for _, b := range dbtest.Backends {
		if b.Name == "postgres" {
			pg = b
		}
	}
	var proxy *dropProxy
	h := start(t, pg, func(c *meter.Config) {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy = startProxy(t, u.Host)
		u.Host = proxy.ln.Addr().String()
		c.DatabaseURL = u.String()
	})

	type sum struct{ n, in, out int64 }
	var produced sum
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			r := record(fmt.Sprintf("req-%04d", i), "alice", int64(i%7+1), int64(i%11+1))
			r.FinishedAt = finished.Add(time.Duration(i) * time.Minute) // spans several hours
			h.publish(r, r.RequestID)
			produced.n++
			produced.in += r.InputTokens
			produced.out += r.OutputTokens
		}
	}
	emit(0, 100)
	h.eventually("the first 100 records are written", func() bool { return h.rows("usage_records") == 100 })

	proxy.cut()
	emit(100, 300)
	// A record delivered again under a new message id during the outage.
	dup := record("req-0150", "alice", int64(150%7+1), int64(150%11+1))
	dup.FinishedAt = finished.Add(150 * time.Minute)
	h.publish(dup, "req-0150-again")
	h.eventually("the meter fails to write and retries", func() bool {
		ci := h.consumer()
		return proxy.dropped() > 0 && (ci.NumRedelivered > 0 || ci.NumAckPending > 0)
	})
	if n := h.rows("usage_records"); n != 100 {
		t.Fatalf("usage_records has %d rows during the outage, want 100", n)
	}

	proxy.restore()
	emit(300, 400)
	h.eventually("every record is written after the outage", func() bool {
		return h.rows("usage_records") >= 400 && h.settled()
	})

	var got sum
	db := dbtest.QueryInt
	got.n = db(t, h.url, "", "SELECT count(*) FROM usage_records")
	got.in = db(t, h.url, "", "SELECT sum(input_tokens) FROM usage_records")
	got.out = db(t, h.url, "", "SELECT sum(output_tokens) FROM usage_records")
	if got != produced {
		t.Errorf("ledger holds %+v, produced %+v", got, produced)
	}
	if n := db(t, h.url, "", "SELECT count(DISTINCT request_id) FROM usage_records"); n != produced.n {
		t.Errorf("ledger holds %d distinct requests, produced %d", n, produced.n)
	}
	rolled := sum{
		n:   db(t, h.url, "", "SELECT sum(requests) FROM usage_hourly"),
		in:  db(t, h.url, "", "SELECT sum(input_tokens) FROM usage_hourly"),
		out: db(t, h.url, "", "SELECT sum(output_tokens) FROM usage_hourly"),
	}
	if rolled != produced {
		t.Errorf("hourly rollups hold %+v, produced %+v", rolled, produced)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("meter stopped with %v", err)
	}
}
