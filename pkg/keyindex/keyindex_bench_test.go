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
				if _, err := js.PublishAsync("$KV.KEYS."+benchKey(i), []byte("v")); err != nil {
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
				var x *keyindex.Index
				var stop context.CancelFunc
				done := make(chan struct{})
				heap += heapGrowth(func() any {
					x = keyindex.New(keyindex.DefaultMaxKeys)
					var fctx context.Context
					fctx, stop = context.WithCancel(ctx)
					go func() { defer close(done); x.Follow(fctx, open, nil) }()
					deadline := time.Now().Add(followDeadline)
					for !x.Absent(probe) {
						if time.Now().After(deadline) {
							b.Fatalf("the index of %d keys was not ready after %s", n, followDeadline)
						}
						time.Sleep(time.Millisecond)
					}
					b.StopTimer()
					return x
				})
				if x.Len() != n {
					b.Fatalf("index holds %d keys, want %d", x.Len(), n)
				}
				stop()
				<-done
				b.StartTimer()
			}
			reportHeap(b, heap, n)
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
				keys[i] = benchKey(i)
			}
			now := time.Now()
			var heap uint64
			for range b.N {
				heap += heapGrowth(func() any {
					x := keyindex.New(keyindex.DefaultMaxKeys)
					for _, k := range keys {
						if !x.Put(k, now) {
							b.Fatal("index full")
						}
					}
					return x
				})
			}
			reportHeap(b, heap, n)
		})
	}
}

// followDeadline bounds the wait for one index to become ready; a failure
// deadline, not a measurement.
const followDeadline = 2 * time.Minute

// benchKey is the i-th key of a benchmark bucket: a hex SHA-256 digest, as
// the cache's keys are.
func benchKey(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(sum[:])
}

// heapGrowth runs build and returns how much the live heap grew while
// what build returns is still alive.
func heapGrowth(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
}

// reportHeap reports the mean heap growth of b.N indexes of n keys.
func reportHeap(b *testing.B, heap uint64, n int) {
	b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "MiB/index")
	b.ReportMetric(float64(heap)/float64(b.N)/float64(n), "B/key")
}
