package chat

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A late worker's claim races the undelivered-request path: whichever
// deletes the request from INBOUND first owns it. The claim of a request
// still there wins; the claim of one already deleted (answered as
// undelivered) loses and sends nothing.
func TestClaim(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	s, err := New(Config{AckWait: time.Second, Logger: slog.New(slog.DiscardHandler)}, nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := s.declare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := nc.SubscribeSync(s.subj.Outbound("alice"))
	if err != nil {
		t.Fatal(err)
	}
	pull := func(reqID string) (jetstream.Msg, uint64) {
		t.Helper()
		if _, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: s.subj.Inbound("alice"), Data: []byte(`{}`), Header: nats.Header{bus.HeaderRequestID: {reqID}}}); err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		return m, md.Sequence.Stream
	}
	em := &emitter{nc: nc, log: s.log, subject: s.subj.Outbound("alice"), reqID: "r"}

	m, seq := pull("r1")
	if !s.claim(m, seq, em) {
		t.Fatal("claim of a request still in INBOUND failed")
	}
	if _, err := s.inbound.GetMsg(ctx, seq); err == nil {
		t.Fatal("a claimed request is still in INBOUND")
	}

	m, seq = pull("r2")
	if err := s.inbound.DeleteMsg(ctx, seq); err != nil { // answered as undelivered
		t.Fatal(err)
	}
	if s.claim(m, seq, em) {
		t.Fatal("claimed a request that was already answered as undelivered")
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := out.Pending(); n != 0 {
		t.Fatalf("the losing claim sent %d events", n)
	}
}
