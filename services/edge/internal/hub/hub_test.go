package hub

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

const testFlush = 5 * time.Second

type delivery struct {
	id    string
	event []byte
}

// chanSink mimics the edge's socket: a bounded queue of (id, shared event)
// filled without blocking.
type chanSink struct {
	q        chan delivery
	mu       sync.Mutex
	dropped  int
	rejected []int
	// unflushed counts Deliver calls since the last Flush.
	unflushed, flushes int
}

func (s *chanSink) Reject(id string, size int) {
	s.mu.Lock()
	s.rejected = append(s.rejected, size)
	s.mu.Unlock()
	select {
	case s.q <- delivery{id: id}:
	default:
	}
}

func (s *chanSink) Flush() {
	s.mu.Lock()
	s.unflushed = 0
	s.flushes++
	s.mu.Unlock()
}

func (s *chanSink) Deliver(id string, event []byte) {
	s.mu.Lock()
	s.unflushed++
	s.mu.Unlock()
	select {
	case s.q <- delivery{id, event}:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

func TestRefcountAndFanout(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	pub := natstest.Connect(t, srv)
	h := New(nc, 0, 1)
	defer h.Close()
	base := nc.NumSubscriptions()

	a, b := &chanSink{q: make(chan delivery, 8)}, &chanSink{q: make(chan delivery, 8)}
	subjects := []string{"gh.ch.x.y"}
	if err := h.Add(subjects, Member{Sink: a, ID: "a1"}, testFlush); err != nil {
		t.Fatal(err)
	}
	if err := h.Add(subjects, Member{Sink: b, ID: "b1"}, testFlush); err != nil {
		t.Fatal(err)
	}
	if got := nc.NumSubscriptions() - base; got != 1 {
		t.Fatalf("%d NATS subscriptions, want 1", got)
	}
	if err := pub.Publish("gh.ch.x.y", []byte(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*chanSink{a, b} {
		select {
		case got := <-s.q:
			if string(got.event) != `"{\"k\":\"v\"}"` {
				t.Fatalf("got %q", got.event)
			}
		case <-time.After(testFlush):
			t.Fatal("no delivery")
		}
	}
	h.Remove(subjects, Member{Sink: a, ID: "a1"})
	if h.NumSubscriptions() != 1 || h.NumMembers("gh.ch.x.y") != 1 {
		t.Fatal("removing one member dropped the subscription")
	}
	h.Remove(subjects, Member{Sink: b, ID: "b1"})
	if h.NumSubscriptions() != 0 || nc.NumSubscriptions() != base {
		t.Fatal("subscription kept after the last member left")
	}
	h.Close()
	if err := h.Add(subjects, Member{Sink: a, ID: "a1"}, testFlush); err != ErrClosed {
		t.Fatalf("Add after Close = %v", err)
	}
}

func TestOversizedEventRejected(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	pub := natstest.Connect(t, srv)
	h := New(nc, 8, 1)
	defer h.Close()
	a := &chanSink{q: make(chan delivery, 8)}
	subjects := []string{"gh.ch.x.big"}
	if err := h.Add(subjects, Member{Sink: a, ID: "a1"}, testFlush); err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{`"123456789"`, `{"k":1}`} {
		if err := pub.Publish(subjects[0], []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"", `"{\"k\":1}"`} {
		select {
		case got := <-a.q:
			if got.id != "a1" || string(got.event) != want {
				t.Fatalf("delivery %d = %q %q, want a1 %q", i, got.id, got.event, want)
			}
		case <-time.After(testFlush):
			t.Fatalf("no delivery %d", i)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.rejected) != 1 || a.rejected[0] != 11 {
		t.Fatalf("rejected = %v, want [11]", a.rejected)
	}
}

// BenchmarkFanout measures the delivery path of one NATS message to many
// local subscribers: JSON-string encoding once, then a non-blocking enqueue
// per subscriber.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := natstest.Start(b)
			nc := natstest.Connect(b, srv)
			h := New(nc, 0, 1)
			defer h.Close()
			subj := []string{"gh.ch.Outbound-Messages.bench"}
			sinks := make([]*chanSink, n)
			for i := range sinks {
				sinks[i] = &chanSink{q: make(chan delivery, 1)}
				if err := h.Add(subj, Member{Sink: sinks[i], ID: "s" + strconv.Itoa(i)}, testFlush); err != nil {
					b.Fatal(err)
				}
			}
			st := h.subs[subj[0]]
			handler := h.handler(subj[0])
			msg := &nats.Msg{Subject: subj[0], Sub: st.sub, Data: []byte(`{"contentBlockDelta":{"delta":{"text":"hello world"},"contentBlockIndex":0},"requestId":"r","seq":1}`)}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				handler(msg)
				for _, s := range sinks {
					<-s.q
				}
			}
		})
	}
}

// TestFlushEndsEveryBurst checks that a burst of events ends with a Flush
// of every member (nothing stays held back), that no more than batch events
// go by without one, and that a burst is flushed in fewer batches than it
// has events when it arrives faster than it is handed over.
func TestFlushEndsEveryBurst(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	pub := natstest.Connect(t, srv)
	const batch, events = 8, 403 // not a multiple: the burst's end must flush
	h := New(nc, 0, batch)
	defer h.Close()
	sinks := []*chanSink{{q: make(chan delivery, events)}, {q: make(chan delivery, events)}}
	maxUnflushed := 0
	for i, s := range sinks {
		if err := h.Add([]string{"gh.ch.burst"}, Member{Sink: s, ID: strconv.Itoa(i)}, testFlush); err != nil {
			t.Fatal(err)
		}
	}
	for range events {
		if err := pub.Publish("gh.ch.burst", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, s := range sinks {
		for k := range events {
			select {
			case <-s.q:
				s.mu.Lock()
				maxUnflushed = max(maxUnflushed, s.unflushed)
				s.mu.Unlock()
			case <-time.After(testFlush):
				t.Fatalf("only %d of %d events delivered", k, events)
			}
		}
	}
	deadline := time.Now().Add(testFlush)
	for _, s := range sinks {
		for {
			s.mu.Lock()
			unflushed, flushes := s.unflushed, s.flushes
			s.mu.Unlock()
			if unflushed == 0 {
				if flushes < events/batch {
					t.Fatalf("%d flushes for %d events: more than %d events went by without one", flushes, events, batch)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events delivered but never flushed", unflushed)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if maxUnflushed > batch {
		t.Fatalf("%d events went by without a flush, want at most %d", maxUnflushed, batch)
	}
}
