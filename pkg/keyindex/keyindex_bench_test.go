package keyindex_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
)

// BenchmarkFollowStart measures what a new replica pays before its index
// answers: the watch of a bucket already holding n keys, from Follow's
// start to the index being ready. MiB/index is the growth of the whole
// process's heap, the embedded NATS server's caches of the bucket
// included; BenchmarkIndexHeap has the index's own. Run with
// -benchtime=Nx; each iteration builds one index.
func BenchmarkFollowStart(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			js := newJetStream(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "KEYS", TTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				sum := sha256.Sum256([]byte(fmt.Sprint(i)))
				if _, err := js.PublishAsync("$KV.KEYS."+hex.EncodeToString(sum[:]), []byte("v")); err != nil {
					b.Fatal(err)
				}
				if i%10_000 == 9_999 {
					<-js.PublishAsyncComplete()
				}
			}
			<-js.PublishAsyncComplete()
			if st, err := kv.Status(ctx); err != nil || st.Values() != uint64(n) {
				b.Fatalf("bucket holds %v keys (%v), want %d", st, err, n)
			}
			probe := "ff" + hex.EncodeToString(make([]byte, 31)) // never stored
			open := func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, "KEYS") }
			var heap uint64
			b.ResetTimer()
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				x := keyindex.New(keyindex.DefaultMaxKeys)
				fctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); x.Follow(fctx, open, nil) }()
				for !x.Absent(probe) {
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				if x.Len() != n {
					b.Fatalf("index holds %d keys, want %d", x.Len(), n)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
				runtime.KeepAlive(x)
				stop()
				<-done
				b.StartTimer()
			}
			b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "MiB/index")
			b.ReportMetric(float64(heap)/float64(b.N)/float64(n), "B/key")
		})
	}
}

// BenchmarkIndexHeap measures the heap an index of n keys holds, without
// a server: n Puts into a fresh index.
func BenchmarkIndexHeap(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := make([]string, n)
			for i := range keys {
				sum := sha256.Sum256([]byte(fmt.Sprint(i)))
				keys[i] = hex.EncodeToString(sum[:])
			}
			now := time.Now()
			var heap uint64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				x := keyindex.New(keyindex.DefaultMaxKeys)
				for _, k := range keys {
					if !x.Put(k, now) {
						b.Fatal("index full")
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
				runtime.KeepAlive(x)
			}
			b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "MiB/index")
			b.ReportMetric(float64(heap)/float64(b.N)/float64(n), "B/key")
		})
	}
}
