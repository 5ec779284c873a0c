package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// recordingWriter keeps every record written to it.
type recordingWriter struct {
	mu   sync.Mutex
	recs []bus.UsageRecord
}

func (w *recordingWriter) InsertBatch(_ context.Context, recs []bus.UsageRecord) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recs = append(w.recs, recs...)
	return int64(len(recs)), nil
}

func (w *recordingWriter) written() []bus.UsageRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]bus.UsageRecord(nil), w.recs...)
}

// TestRunPublishTime: a record without finishedAt gets the stream's
// publish time; one with it keeps its own.
func TestRunPublishTime(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.Start(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "USAGE", Subjects: []string{"usage"}})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	own := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, data := range []string{`{"requestId":"bare"}`, `{"requestId":"own","finishedAt":"2026-01-02T03:04:05Z"}`} {
		if _, err := js.Publish(ctx, "usage", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now().Add(time.Second)
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ledger", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	w := &recordingWriter{}
	c, err := New(Config{Consumer: cons, Writer: w, BatchSize: 10, FlushInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for len(w.written()) < 2 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := map[string]bus.UsageRecord{}
	for _, r := range w.written() {
		got[r.RequestID] = r
	}
	if r := got["bare"]; r.FinishedAt.Before(before) || r.FinishedAt.After(after) || r.FinishedAt.Location() != time.UTC {
		t.Errorf("record without finishedAt: finished %v, want the publish time in [%v, %v], UTC", r.FinishedAt, before, after)
	}
	if r := got["own"]; !r.FinishedAt.Equal(own) {
		t.Errorf("record with finishedAt: finished %v, want %v", r.FinishedAt, own)
	}
}
