package systemtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// BenchmarkChatRoundTrip measures one chat request through the whole
// in-process system over a real TLS WebSocket: publish to the inbound
// channel, the edge stores it in JetStream, chat pulls it, reserves, streams
// the echo answer (2 words), settles, and the final metadata event arrives.
// It reports the time to publish_success and to the final event.
func BenchmarkChatRoundTrip(b *testing.B) {
	cfg := devConfig(b, "")
	cfg.Edge.PublishRate, cfg.Edge.PublishBurst = 1e6, 1e6 // measure the pipeline, not the limiter
	dev := startDev(b, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	token, err := dev.Issuer().Mint(authz.DevClaims{Sub: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := tryDialAppSync(ctx, b, dev.EdgeURL(), dev.CAFile(), token)
	if err != nil {
		b.Fatal(err)
	}
	defer c.conn.CloseNow()
	if err := c.send(ctx, frame{Type: "subscribe", ID: "s", Channel: "/Outbound-Messages/alice", Authorization: c.auth()}); err != nil {
		b.Fatal(err)
	}
	if f, err := c.next(ctx); err != nil || f.Type != "subscribe_success" {
		b.Fatalf("subscribe: %+v %v", f, err)
	}
	b.ReportAllocs()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		// A distinct message per iteration so the cache never answers.
		ev := referenceRequest(b, fmt.Sprintf("hello %d", i), "echo", "c1")
		if err := c.send(ctx, frame{Type: "publish", ID: "p", Channel: "/Inbound-Messages/alice", Events: []string{ev}, Authorization: c.auth()}); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			f, err := c.next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if f.Type == "data" && strings.Contains(string(f.Event), `metadata`) {
				done = true
			}
			if f.Type == "publish_error" {
				b.Fatalf("publish: %+v", f)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
