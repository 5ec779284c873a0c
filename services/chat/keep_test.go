package chat_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/chat"
)

// lastBlock returns the number of the newest block file of stream on srv
// (JetStream's file store names them 1.blk, 2.blk, ...).
func lastBlock(t *testing.T, srv *server.Server, stream string) int {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(srv.JetStreamConfig().StoreDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".blk") && filepath.Base(filepath.Dir(filepath.Dir(path))) == stream {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatalf("no block files of %s under %s", stream, srv.JetStreamConfig().StoreDir)
	}
	last := 0
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".blk"))
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, n)
	}
	return last
}

// TestInboundKeepMarkers: a chat service on a file-stored INBOUND stores
// keep markers, one per interval whatever the number of replicas, and
// never delivers them. With them, answering requests one at a time keeps
// the same block file; the control shows that without a marker the file
// store replaces the block file on every acknowledgement.
func TestInboundKeepMarkers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	h.startReplica()
	eventually(t, "a keep marker", func() bool { return h.inboundCount(h.subj.InboundKeep()) > 0 })
	began := h.inboundCount(h.subj.InboundKeep())
	start := time.Now()

	first := lastBlock(t, h.srv, h.subj.StreamInbound())
	fay := user("fay")
	sub := h.listen(h.subj.Outbound(fay.ChannelID))
	const n = 20
	for i := range n {
		id := fmt.Sprint("req-", i)
		h.publish(fay, id, request(fmt.Sprint("one at a time ", i)), nil)
		checkAnswer(t, answer(t, sub), id, "conv-1", fmt.Sprint("one at a time ", i), "end_turn")
		eventually(t, "the request acknowledged", func() bool { return h.inboundMsgs() == 0 })
	}
	if last := lastBlock(t, h.srv, h.subj.StreamInbound()); last-first > 2 {
		t.Errorf("INBOUND's block files went from %d to %d over %d requests; the keep marker should hold the last block", first, last, n)
	}
	if info := h.consumerInfo(); info.NumPending != 0 || info.NumAckPending != 0 || info.Delivered.Consumer != n {
		t.Errorf("consumer pending %d ackPending %d delivered %d; want 0 0 %d (markers are never delivered)", info.NumPending, info.NumAckPending, info.Delivered.Consumer, n)
	}
	// Two replicas, one marker per interval (their ids collide).
	if got, most := h.inboundCount(h.subj.InboundKeep())-began, uint64(time.Since(start)/bus.InboundKeepInterval)+2; got > most {
		t.Errorf("%d markers in %s from two replicas; want at most %d (one per %s)", got, time.Since(start), most, bus.InboundKeepInterval)
	}

	// Control: the same work queue without a marker.
	srv := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "wq.a", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if last := lastBlock(t, srv, "WQ"); last < n {
		t.Errorf("control: without a marker the last block is %d after %d acknowledged requests; expected a new block per request (is the marker still needed?)", last, n)
	}
}

// TestNoKeepMarkersInMemory: a memory-stored INBOUND needs no marker (its
// store has no block files) and gets none.
func TestNoKeepMarkersInMemory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{Streams: bus.StreamOptions{InboundStorage: jetstream.MemoryStorage}}, contractOpts{})
	fay := user("fay")
	sub := h.listen(h.subj.Outbound(fay.ChannelID))
	h.publish(fay, "req-m", request("in memory"), nil)
	checkAnswer(t, answer(t, sub), "req-m", "conv-1", "in memory", "end_turn")
	time.Sleep(2 * bus.InboundKeepInterval) // when markers would have been stored
	if n := h.inboundCount(h.subj.InboundKeep()); n != 0 {
		t.Fatalf("%d keep markers in a memory-stored INBOUND", n)
	}
}
