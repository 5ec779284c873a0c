package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/cache"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startCache runs a cache service on a fresh server and waits until its
// endpoints answer.
func startCache(t *testing.T, cfg cache.Config) *nats.Conn {
	t.Helper()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := cache.New(cfg, nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() { defer wg.Done(); runErr = svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run returned %v", runErr)
		}
	})
	s := bus.NewSubjects(cfg.Prefix)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := bus.Request[bus.CacheGetResponse](context.Background(), nc, s.CacheGet(), bus.CacheGetRequest{Key: strings.Repeat("0", 64)}, nil)
		if err == nil {
			return nc
		}
		if !errors.Is(err, bus.ErrNoResponders) || time.Now().After(deadline) {
			t.Fatalf("cache never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func chatReq(text string) bus.ChatRequest {
	return bus.ChatRequest{ModelID: "echo", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: text}}}}}
}

func TestPutGetMiss(t *testing.T) {
	t.Parallel()
	nc := startCache(t, cache.Config{})
	s := bus.NewSubjects("")
	ctx := context.Background()
	key := bus.CacheKey("user:-/alice", "echo", chatReq("hello"))

	got, err := bus.Request[bus.CacheGetResponse](ctx, nc, s.CacheGet(), bus.CacheGetRequest{Key: key}, nil)
	if err != nil || got.Hit || got.Entry != nil {
		t.Fatalf("get before put = %+v, %v; want miss", got, err)
	}
	entry := bus.CacheEntry{ModelID: "echo", Text: "hello", Usage: bus.Usage{InputTokens: 1, OutputTokens: 1, TotalTokens: 2}}
	put, err := bus.Request[bus.CachePutResponse](ctx, nc, s.CachePut(), bus.CachePutRequest{Key: key, Entry: entry}, nil)
	if err != nil || !put.Stored {
		t.Fatalf("put = %+v, %v", put, err)
	}
	got, err = bus.Request[bus.CacheGetResponse](ctx, nc, s.CacheGet(), bus.CacheGetRequest{Key: key}, nil)
	if err != nil || !got.Hit || got.Entry == nil {
		t.Fatalf("get after put = %+v, %v; want hit", got, err)
	}
	if got.Entry.Text != "hello" || got.Entry.ModelID != "echo" || got.Entry.Usage != entry.Usage || got.Entry.CreatedAt.IsZero() {
		t.Fatalf("entry = %+v", got.Entry)
	}
}

func TestScopesIsolate(t *testing.T) {
	t.Parallel()
	nc := startCache(t, cache.Config{})
	s := bus.NewSubjects("")
	ctx := context.Background()
	req := chatReq("the same question")
	alice := bus.CacheKey("user:-/alice", "echo", req)
	bob := bus.CacheKey("user:-/bob", "echo", req)
	tenant := bus.CacheKey("tenant:acme", "echo", req)
	if _, err := bus.Request[bus.CachePutResponse](ctx, nc, s.CachePut(), bus.CachePutRequest{Key: alice, Entry: bus.CacheEntry{Text: "for alice"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{bob, tenant} {
		got, err := bus.Request[bus.CacheGetResponse](ctx, nc, s.CacheGet(), bus.CacheGetRequest{Key: k}, nil)
		if err != nil || got.Hit {
			t.Fatalf("other scope = %+v, %v; want miss", got, err)
		}
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	nc := startCache(t, cache.Config{MaxEntryBytes: 1024})
	s := bus.NewSubjects("")
	good := bus.CacheKey("user:-/a", "echo", chatReq("x"))
	cases := []struct {
		name    string
		subject string
		req     any
		want    string
	}{
		{"get short key", s.CacheGet(), bus.CacheGetRequest{Key: "abc"}, "key"},
		{"get upper hex", s.CacheGet(), bus.CacheGetRequest{Key: strings.ToUpper(good)}, "key"},
		{"get wildcard", s.CacheGet(), bus.CacheGetRequest{Key: strings.Repeat("a", 63) + ">"}, "key"},
		{"get not json", s.CacheGet(), "not an object", "cache get request"},
		{"put empty key", s.CachePut(), bus.CachePutRequest{Entry: bus.CacheEntry{Text: "x"}}, "key"},
		{"put dotted key", s.CachePut(), bus.CachePutRequest{Key: strings.Repeat("a", 32) + "." + strings.Repeat("a", 31)}, "key"},
		{"put oversized", s.CachePut(), bus.CachePutRequest{Key: good, Entry: bus.CacheEntry{Text: strings.Repeat("x", 2000)}}, "limit of 1024 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := bus.Request[bus.CachePutResponse](context.Background(), nc, tc.subject, tc.req, nil)
			var se *bus.ServiceError
			if !errors.As(err, &se) || se.Status() != 400 || !strings.Contains(se.Description, tc.want) {
				t.Fatalf("got %v, want 400 mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBucketConfig(t *testing.T) {
	t.Parallel()
	cfg := cache.Config{Prefix: "t1", TTL: 90 * time.Minute, MaxBytes: 8 << 20, MaxEntryBytes: 4096}
	nc := startCache(t, cfg)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "T1_CACHE")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != cfg.TTL || st.History() != 1 {
		t.Fatalf("bucket TTL %s history %d, want %s 1", st.TTL(), st.History(), cfg.TTL)
	}
	info, err := js.Stream(ctx, "KV_T1_CACHE")
	if err != nil {
		t.Fatal(err)
	}
	sc := info.CachedInfo().Config
	if sc.MaxBytes != cfg.MaxBytes || sc.MaxMsgSize != 4096 || sc.Discard != jetstream.DiscardOld || sc.Storage != jetstream.FileStorage {
		t.Fatalf("stream config maxBytes=%d maxMsgSize=%d discard=%v storage=%v", sc.MaxBytes, sc.MaxMsgSize, sc.Discard, sc.Storage)
	}
}

// TestRestartKeepsEntries runs the service twice on one server: the second
// start updates the existing bucket and still finds the entry.
func TestRestartKeepsEntries(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	s := bus.NewSubjects("")
	key := bus.CacheKey("global:", "echo", chatReq("faq"))
	for i := range 2 {
		svc, err := cache.New(cache.Config{Logger: slog.New(slog.DiscardHandler)}, nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		var got bus.CacheGetResponse
		for {
			got, err = bus.Request[bus.CacheGetResponse](context.Background(), nc, s.CacheGet(), bus.CacheGetRequest{Key: key}, nil)
			if !errors.Is(err, bus.ErrNoResponders) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil || got.Hit != (i == 1) {
			t.Fatalf("run %d: get = %+v, %v", i, got, err)
		}
		if i == 0 {
			if _, err := bus.Request[bus.CachePutResponse](context.Background(), nc, s.CachePut(), bus.CachePutRequest{Key: key, Entry: bus.CacheEntry{Text: "a"}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if err := svc.Run(context.Background()); !errors.Is(err, cache.ErrAlreadyRunning) {
			t.Fatalf("second Run = %v", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cfg  cache.Config
		want string
	}{
		{cache.Config{}, ""},
		{cache.Config{Prefix: "a.>"}, "Prefix"},
		{cache.Config{TTL: time.Millisecond}, "TTL"},
		{cache.Config{MaxBytes: -1}, "MaxBytes"},
		{cache.Config{MaxEntryBytes: -5}, "MaxEntryBytes"},
		{cache.Config{MaxBytes: 100, MaxEntryBytes: 200}, "MaxEntryBytes"},
		{cache.Config{KVTimeout: -1}, "KVTimeout"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if !errors.Is(err, cache.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want error naming %s", tc.cfg, err, tc.want)
		}
	}
	if _, err := cache.New(cache.Config{}, nil); !errors.Is(err, cache.ErrNilConn) {
		t.Errorf("New(nil conn) = %v", err)
	}
}

func TestValidKey(t *testing.T) {
	t.Parallel()
	if err := cache.ValidKey(bus.CacheKey("s", "m", chatReq("x"))); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "g" + strings.Repeat("0", 63), strings.Repeat("0", 65)} {
		if err := cache.ValidKey(k); !errors.Is(err, cache.ErrBadKey) {
			t.Errorf("ValidKey(%q) = %v", k, err)
		}
	}
}

// TestStorageFailure deletes the bucket under a running service: requests
// then fail with a server error, not a miss.
func TestStorageFailure(t *testing.T) {
	t.Parallel()
	nc := startCache(t, cache.Config{KVTimeout: 500 * time.Millisecond})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := js.DeleteKeyValue(ctx, "CACHE"); err != nil {
		t.Fatal(err)
	}
	s := bus.NewSubjects("")
	key := bus.CacheKey("user:-/a", "echo", chatReq("x"))
	// The put fails first; from then on the key index is not trusted (the
	// bucket it follows is gone), so the get reads the bucket and fails
	// too instead of answering a miss from the index.
	for _, call := range []struct {
		subject string
		req     any
	}{
		{s.CachePut(), bus.CachePutRequest{Key: key, Entry: bus.CacheEntry{Text: "x"}}},
		{s.CacheGet(), bus.CacheGetRequest{Key: key}},
	} {
		_, err := bus.Request[bus.CachePutResponse](ctx, nc, call.subject, call.req, nil)
		var se *bus.ServiceError
		if !errors.As(err, &se) || se.Status() < 500 {
			t.Fatalf("%s: got %v, want a 5xx service error", call.subject, err)
		}
		t.Logf("%s: %v", call.subject, se)
	}
}

// TestMissesAnsweredWithoutBucketReads watches the wire: the server
// copies every direct get of the cache bucket to a plain subscriber, so
// the test sees exactly which gets read the bucket. Once the key index is
// built, a get for a key never stored reads nothing; a stored key is read
// (and hits); a key written by another writer (as another replica would)
// and a deleted key are followed through the bucket's watch.
func TestMissesAnsweredWithoutBucketReads(t *testing.T) {
	t.Parallel()
	nc := startCache(t, cache.Config{})
	s := bus.NewSubjects("")
	ctx := context.Background()
	reads, err := nc.SubscribeSync("$JS.API.DIRECT.GET.KV_" + s.CacheBucket() + ".>")
	if err != nil {
		t.Fatal(err)
	}
	// get returns whether key hit and how many bucket reads it caused. The
	// copy of the direct get reaches this connection before the reply
	// that depends on it, so the count is exact when the request returns.
	get := func(key string) (bool, int) {
		t.Helper()
		before, _, _ := reads.Pending()
		got, err := bus.Request[bus.CacheGetResponse](ctx, nc, s.CacheGet(), bus.CacheGetRequest{Key: key}, nil)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		after, _, _ := reads.Pending()
		return got.Hit, after - before
	}
	// until returns once cond holds, within 500 tries.
	until := func(what string, cond func() bool) {
		t.Helper()
		for range 500 {
			if cond() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("never: %s", what)
	}
	n := 0
	unknown := func() string { n++; return bus.CacheKey("user:-/a", "echo", chatReq(fmt.Sprint("never stored ", n))) }
	until("a miss answered without reading the bucket (index built)", func() bool { _, r := get(unknown()); return r == 0 })

	for range 20 {
		if hit, r := get(unknown()); hit || r != 0 {
			t.Fatalf("unknown key: hit %t, %d bucket reads; want a miss from the index", hit, r)
		}
	}
	key := bus.CacheKey("user:-/a", "echo", chatReq("stored"))
	if _, err := bus.Request[bus.CachePutResponse](ctx, nc, s.CachePut(), bus.CachePutRequest{Key: key, Entry: bus.CacheEntry{Text: "a"}}, nil); err != nil {
		t.Fatal(err)
	}
	if hit, r := get(key); !hit || r != 1 {
		t.Fatalf("stored key right after its put: hit %t, %d bucket reads; want a hit read from the bucket", hit, r)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, s.CacheBucket())
	if err != nil {
		t.Fatal(err)
	}
	other := bus.CacheKey("user:-/a", "echo", chatReq("written by another replica"))
	if _, err := kv.Put(ctx, other, []byte(`{"text":"b"}`)); err != nil {
		t.Fatal(err)
	}
	until("a key another writer stored is found", func() bool { hit, _ := get(other); return hit })
	if err := kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	until("a deleted key is answered from the index again", func() bool { hit, r := get(key); return !hit && r == 0 })
}
