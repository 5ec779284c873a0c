package keyindex_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

// until waits (bounded; a failure deadline, not a speed assertion) for
// cond.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newJetStream connects to a fresh embedded server with JetStream.
func newJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestFollow runs the index against a real bucket: it answers nothing
// while the bucket does not exist, learns the keys already stored, follows
// puts and deletes by other writers, and stops answering when the bucket
// goes away until a new one has been watched.
func TestFollow(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const bucket = "KEYS"
	key := func(c string) string { return strings.Repeat(c, 64) }

	x := keyindex.New(100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Follow(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, bucket) }, nil)
	}()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond) // Follow has tried the missing bucket
	if x.Absent(key("a")) {
		t.Fatal("absent answered while the bucket does not exist")
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key("a"), []byte("stored before the watch")); err != nil {
		t.Fatal(err)
	}
	until(t, "the index built after the bucket appeared", func() bool { return x.Absent(key("b")) })
	if x.Absent(key("a")) {
		t.Fatal("a key stored before the watch is reported absent")
	}
	if _, err := kv.Put(ctx, key("c"), []byte("another writer")); err != nil {
		t.Fatal(err)
	}
	until(t, "another writer's put followed", func() bool { return !x.Absent(key("c")) })
	if err := kv.Delete(ctx, key("c")); err != nil {
		t.Fatal(err)
	}
	until(t, "a delete followed", func() bool { return x.Absent(key("c")) })

	if err := js.DeleteKeyValue(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	x.Invalidate() // as an owner does when a bucket operation fails
	if x.Absent(key("f")) {
		t.Fatal("an invalidated index answers")
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key("d"), []byte("in the new bucket")); err != nil {
		t.Fatal(err)
	}
	until(t, "the index rebuilt from the new bucket", func() bool { return x.Absent(key("f")) })
	if x.Absent(key("d")) || !x.Absent(key("a")) {
		t.Fatal("the rebuilt index does not match the new bucket")
	}
}

// TestFollowFull: a bucket with more keys than the index may keep leaves
// the index answering nothing.
func TestFollowFull(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"1", "2", "3"} {
		if _, err := kv.Put(ctx, strings.Repeat(c, 64), nil); err != nil {
			t.Fatal(err)
		}
	}
	x := keyindex.New(2)
	var opened atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Follow(ctx, func(context.Context) (jetstream.KeyValue, error) {
			if opened.Add(1) > 1 {
				return nil, errors.New("only one watch in this test")
			}
			return kv, nil
		}, nil)
	}()
	defer func() { cancel(); <-done }()
	until(t, "the watch met the full index", func() bool { return x.Len() == 0 && opened.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if x.Absent(strings.Repeat("9", 64)) {
		t.Fatal("a full index answers")
	}
}
