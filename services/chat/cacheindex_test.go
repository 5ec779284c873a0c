package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
)

// cacheBucket declares the response cache's bucket as the cache service
// does, so that chat's key index can watch it.
func cacheBucket(t *testing.T, h *harness) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	kv, err := h.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: h.subj.CacheBucket(), TTL: time.Hour, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// asker publishes fay's requests and returns how many lookups the cache
// service answered for each, and the answer's text.
type asker struct {
	t *testing.T
	h *harness
	n int
}

func (a *asker) ask(text string) (gets int, answered string) {
	a.t.Helper()
	fay := user("fay")
	sub := a.h.listen(a.h.subj.Outbound(fay.ChannelID))
	defer func() { _ = sub.Unsubscribe() }()
	before := a.h.c.getCount()
	a.n++
	id := fmt.Sprintf("req-%d", a.n)
	a.h.publish(fay, id, request(text), nil)
	var b []byte
	for _, ev := range answer(a.t, sub) {
		if ev.Error != nil {
			a.t.Fatalf("request %q: %+v", text, ev.Error)
		}
		if d := ev.ContentBlockDelta; d != nil {
			b = append(b, d.Delta.Text...)
		}
	}
	// The lookup comes before the first event, so the count is final.
	return a.h.c.getCount() - before, string(b)
}

// TestCacheIndexSkipsLookups: once chat's index of the cache bucket is
// built, a prompt never stored is answered without asking the cache
// service; a stored one (by this replica, or by anyone as the bucket's
// watch shows) is always asked for, and hits; a deleted one is not asked
// for again.
func TestCacheIndexSkipsLookups(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	kv := cacheBucket(t, h)
	a := &asker{t: t, h: h}
	eventually(t, "the index built", func() bool { gets, _ := a.ask(fmt.Sprint("warm-up ", a.n)); return gets == 0 })

	for i := range 10 {
		text := fmt.Sprint("never asked before ", i)
		if gets, got := a.ask(text); gets != 0 || got != text {
			t.Fatalf("new prompt %d: %d cache lookups, answer %q; want none, answered by the model", i, gets, got)
		}
	}
	// This replica stored that answer: a repeat asks the cache service.
	if gets, _ := a.ask("never asked before 3"); gets != 1 {
		t.Fatalf("repeat of a stored answer: %d cache lookups, want 1", gets)
	}

	// Another writer stores an answer: the watch brings its key.
	var req bus.ChatRequest
	_ = json.Unmarshal(request("stored elsewhere"), &req)
	key := bus.CacheKey(bus.CacheScopeUser+":"+user("fay").Subject(), "echo", req)
	entry := bus.CacheEntry{ModelID: "echo", Text: "from the cache", Usage: bus.Usage{InputTokens: 2, OutputTokens: 3, TotalTokens: 5}}
	h.c.mu.Lock()
	h.c.entries[key] = entry
	h.c.mu.Unlock()
	if !chat.CacheKeyAbsent(h.svc, key) {
		t.Fatal("a key nobody stored yet is not absent from the built index")
	}
	data, _ := json.Marshal(entry)
	if _, err := kv.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other writer's key in the index", func() bool { return !chat.CacheKeyAbsent(h.svc, key) })
	if gets, got := a.ask("stored elsewhere"); gets != 1 || got != "from the cache" {
		t.Fatalf("answer stored elsewhere: %d lookups, answer %q; want 1 and the cached answer", gets, got)
	}

	if err := kv.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted key gone from the index", func() bool { return chat.CacheKeyAbsent(h.svc, key) })
}

// TestCacheIndexOff: with the index off, every prompt is asked for.
func TestCacheIndexOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{CacheIndexMaxKeys: -1}, contractOpts{})
	cacheBucket(t, h)
	a := &asker{t: t, h: h}
	time.Sleep(100 * time.Millisecond) // what an index would need to build
	for i := range 5 {
		if gets, _ := a.ask(fmt.Sprint("prompt ", i)); gets != 1 {
			t.Fatalf("prompt %d: %d cache lookups with the index off, want 1", i, gets)
		}
	}
}
