package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// installSpanRecorder makes every Gatehouse span in this process record
// into memory (synchronously, no export), with W3C propagation across the
// bus, so -spans can split the real path of each request into stages.
// Recording adds work to every span (not measured on its own); read the
// stages relative to each other, not against the latency tables.
func installSpanRecorder() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return rec
}

// stageSpans are the spans of one gateway request that the breakdown reads.
type stageSpans struct {
	edge, chat, cacheClient, cacheServer, reserveClient, reserveServer, model sdktrace.ReadOnlySpan
}

// reportSpans prints, for the gateway requests whose edge span started in
// [since, until), percentiles of each stage between the edge accepting the
// request and chat calling the upstream.
func reportSpans(rec *tracetest.SpanRecorder, rate int, since, until time.Time) {
	traces := map[trace.TraceID]*stageSpans{}
	for _, s := range rec.Ended() {
		id := s.SpanContext().TraceID()
		t := traces[id]
		if t == nil {
			t = &stageSpans{}
			traces[id] = t
		}
		switch name, kind := s.Name(), s.SpanKind(); {
		case name == "POST /v1/chat/completions" && kind == trace.SpanKindServer:
			t.edge = s
		case name == "chat request":
			t.chat = s
		case name == "cache get" && kind == trace.SpanKindClient:
			t.cacheClient = s
		case name == "cache get" && kind == trace.SpanKindServer:
			t.cacheServer = s
		case name == "meter reserve" && kind == trace.SpanKindClient:
			t.reserveClient = s
		case name == "meter reserve" && kind == trace.SpanKindServer:
			t.reserveServer = s
		case strings.HasPrefix(name, "chat ") && kind == trace.SpanKindClient:
			t.model = s
		}
	}
	stages := []struct {
		name string
		d    func(*stageSpans) (time.Duration, bool) // false: the stage did not happen
	}{
		{"edge span start -> chat request span start (edge auth/encode, INBOUND store, pull, delivery)", func(t *stageSpans) (time.Duration, bool) { return t.chat.StartTime().Sub(t.edge.StartTime()), true }},
		{"chat request start -> cache get start (decode, validate, model check)", func(t *stageSpans) (time.Duration, bool) {
			return t.cacheClient.StartTime().Sub(t.chat.StartTime()), true
		}},
		{"cache get, as chat waits for it", func(t *stageSpans) (time.Duration, bool) {
			return t.cacheClient.EndTime().Sub(t.cacheClient.StartTime()), true
		}},
		{"  of which in the cache service's handler (requests that asked it; chat's key index answers most misses itself)", func(t *stageSpans) (time.Duration, bool) {
			if t.cacheServer == nil {
				return 0, false
			}
			return t.cacheServer.EndTime().Sub(t.cacheServer.StartTime()), true
		}},
		{"cache get end -> meter reserve start", func(t *stageSpans) (time.Duration, bool) {
			return t.reserveClient.StartTime().Sub(t.cacheClient.EndTime()), true
		}},
		{"meter reserve, as chat waits for it", func(t *stageSpans) (time.Duration, bool) {
			return t.reserveClient.EndTime().Sub(t.reserveClient.StartTime()), true
		}},
		{"  of which in the meter's handler", func(t *stageSpans) (time.Duration, bool) {
			return t.reserveServer.EndTime().Sub(t.reserveServer.StartTime()), true
		}},
		{"meter reserve end -> upstream call start", func(t *stageSpans) (time.Duration, bool) {
			return t.model.StartTime().Sub(t.reserveClient.EndTime()), true
		}},
		{"edge span start -> upstream call start (total)", func(t *stageSpans) (time.Duration, bool) { return t.model.StartTime().Sub(t.edge.StartTime()), true }},
		{"upstream call start -> chat published the first delta (the upstream's own TTFT, SSE parse)", func(t *stageSpans) (time.Duration, bool) {
			return eventAt(t.chat, "first delta published").Sub(t.model.StartTime()), true
		}},
		{"chat published the first delta -> edge flushed the first chunk (NATS, edge decode, SSE write)", func(t *stageSpans) (time.Duration, bool) {
			return eventAt(t.edge, "first chunk flushed").Sub(eventAt(t.chat, "first delta published")), true
		}},
		{"edge span start -> edge flushed the first chunk", func(t *stageSpans) (time.Duration, bool) {
			return eventAt(t.edge, "first chunk flushed").Sub(t.edge.StartTime()), true
		}},
	}
	var complete []*stageSpans
	for _, t := range traces {
		if t.edge != nil && t.chat != nil && t.cacheClient != nil && t.reserveClient != nil &&
			t.reserveServer != nil && t.model != nil && !t.edge.StartTime().Before(since) && t.edge.StartTime().Before(until) &&
			!eventAt(t.chat, "first delta published").IsZero() && !eventAt(t.edge, "first chunk flushed").IsZero() {
			complete = append(complete, t)
		}
	}
	fmt.Printf("\nstages of the gateway path from recorded spans at %d req/s, n=%d requests\n\n", rate, len(complete))
	if len(complete) == 0 {
		return
	}
	fmt.Println("| stage | p50 | p90 | p99 |")
	fmt.Println("|---|---|---|---|")
	for _, st := range stages {
		ds := make([]time.Duration, 0, len(complete))
		for _, t := range complete {
			if d, ok := st.d(t); ok {
				ds = append(ds, d)
			}
		}
		name := st.name
		if len(ds) < len(complete) {
			name = fmt.Sprintf("%s, n=%d", name, len(ds))
		}
		if len(ds) == 0 {
			fmt.Printf("| %s | - | - | - |\n", name)
			continue
		}
		slices.Sort(ds)
		fmt.Printf("| %s | %s | %s | %s |\n", name, ms(pct(ds, 50)), ms(pct(ds, 90)), ms(pct(ds, 99)))
	}
}

// eventAt is when span recorded its first event named name (zero if none).
func eventAt(span sdktrace.ReadOnlySpan, name string) time.Time {
	for _, e := range span.Events() {
		if e.Name == name {
			return e.Time
		}
	}
	return time.Time{}
}
