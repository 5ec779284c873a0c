package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

// The tests here set the global propagator and provider; no other test of
// this package depends on them.

func TestTraceCarrierRoundTrip(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: mustTraceState(t, "gh=1"),
		Remote:     true,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	h := bus.InjectTrace(ctx, nil)
	if got := h[bus.HeaderTraceparent]; len(got) != 1 || got[0] != "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01" {
		t.Fatalf("traceparent = %v (headers %v)", got, h)
	}
	if h[bus.HeaderTracestate][0] != "gh=1" || h["Traceparent"] != nil {
		t.Fatalf("headers not lowercase: %v", h)
	}
	back := trace.SpanContextFromContext(bus.ExtractTrace(context.Background(), h))
	if !back.Equal(sc) {
		t.Fatalf("round trip: got %+v, want %+v", back, sc)
	}
	// Nothing to carry: nothing written, nothing allocated.
	if h := bus.InjectTrace(context.Background(), nil); h != nil {
		t.Fatalf("untraced ctx wrote %v", h)
	}
	if n := testing.AllocsPerRun(100, func() { _ = bus.InjectTrace(context.Background(), nil) }); n != 0 {
		t.Fatalf("InjectTrace without a trace allocates %v times", n)
	}
	if got := bus.ExtractTrace(ctx, nats.Header{"Traceparent": {"00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"}}); got != ctx {
		t.Fatal("a canonicalised Traceparent header was read")
	}
}

func mustTraceState(t *testing.T, s string) trace.TraceState {
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestTraceRequestHandler proves that [bus.Request] carries the caller's
// span to a [bus.TraceHandler] over real NATS.
func TestTraceRequestHandler(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	svc, err := micro.AddService(nc, micro.Config{Name: "tracetest", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	var inHandler trace.SpanContext
	h := bus.TraceHandler(context.Background(), "tracetest", "echo", func(ctx context.Context, r micro.Request) {
		inHandler = trace.SpanContextFromContext(ctx)
		if r.Data() == nil {
			_ = r.Error(bus.CodeBadRequest, "empty", nil)
			return
		}
		bus.Respond(r, map[string]bool{"ok": true})
	})
	if err := svc.AddEndpoint("echo", h, micro.WithEndpointSubject("tracetest.echo")); err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	if _, err := bus.Request[map[string]bool](ctx, nc, "tracetest.echo", 1, nil); err != nil {
		t.Fatal(err)
	}
	parent.End()
	// The handler answers before its span ends (TraceHandler ends it when
	// the handler returns), so the reply can arrive first: wait for it.
	var server sdktrace.ReadOnlySpan
	for range 500 {
		for _, s := range rec.Ended() {
			if s.Name() == "tracetest echo" {
				server = s
			}
		}
		if server != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if server == nil {
		t.Fatalf("no server span among %d after 5 s", len(rec.Ended()))
	}
	if server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID() != parent.SpanContext().SpanID() ||
		server.SpanContext().TraceID() != parent.SpanContext().TraceID() || !server.Parent().IsRemote() {
		t.Fatalf("server span %v is not a remote child of %v", server.Parent(), parent.SpanContext())
	}
	if inHandler.SpanID() != server.SpanContext().SpanID() {
		t.Fatal("the handler's ctx does not carry the server span")
	}
}
