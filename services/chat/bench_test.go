package chat_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkEchoPipeline measures one request end to end: INBOUND publish,
// pull, validation, cache lookup, reservation, an eight-chunk echo answer,
// settlement, the usage record and the cache store, until the final event
// arrives on the outbound subject.
func BenchmarkEchoPipeline(b *testing.B) {
	h := newHarness(b, chat.Config{}, contractOpts{})
	who := user("bench")
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A distinct text each time so every request misses the cache.
		h.publish(who, "bench-"+strconv.Itoa(i), request("the quick brown fox jumps over lazy "+strconv.Itoa(i)), nil)
		answer(b, sub)
	}
}

// BenchmarkFirstDelta measures chat's part of the time to first token:
// from the INBOUND publish (edge's store) to the first content delta on
// the outbound subject (pull, decode, validation, acknowledgement, model
// check, cache lookup, reservation, messageStart, the echo's first word),
// one request at a time. It reports the p50 and p99 of that time; the rest
// of each answer is read untimed.
func BenchmarkFirstDelta(b *testing.B) {
	h := newHarness(b, chat.Config{}, contractOpts{})
	who := user("bench")
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	var firsts []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		h.publish(who, "bench-"+strconv.Itoa(i), request("the quick brown fox jumps over lazy "+strconv.Itoa(i)), nil)
		for {
			ev := next(b, sub)
			if ev.ContentBlockDelta != nil {
				firsts = append(firsts, time.Since(t0))
				break
			}
		}
		answerRest(b, sub)
	}
	slices.Sort(firsts)
	if n := len(firsts); n > 0 {
		b.ReportMetric(float64(firsts[n/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(firsts[n*99/100].Microseconds()), "p99-µs")
	}
}

// answerRest reads events until the final one.
func answerRest(t testing.TB, sub *nats.Subscription) {
	t.Helper()
	for {
		if ev := next(t, sub); ev.Metadata != nil || ev.Error != nil {
			return
		}
	}
}

// BenchmarkEchoPipelineTracing is [BenchmarkEchoPipeline] with tracing off
// as a process without OTEL_EXPORTER_OTLP_* runs it (the no-op provider
// of telemetry.Setup), and on (an SDK provider sampling every request,
// spans dropped after they end), to show what tracing costs chat.
func BenchmarkEchoPipelineTracing(b *testing.B) {
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	for _, on := range []bool{false, true} {
		name := "off"
		var tp trace.TracerProvider = noop.NewTracerProvider()
		if on {
			name = "on"
			sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			defer func() { _ = sdk.Shutdown(context.Background()) }()
			tp = sdk
		}
		b.Run(name, func(b *testing.B) {
			otel.SetTracerProvider(tp)
			h := newHarness(b, chat.Config{}, contractOpts{})
			who := user("bench")
			sub := h.listen(h.subj.Outbound(who.ChannelID))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.publish(who, "bench-"+strconv.Itoa(i), request("the quick brown fox jumps over lazy "+strconv.Itoa(i)), nil)
				answer(b, sub)
			}
		})
	}
}
