package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
)

// These tests set the process-wide provider and environment: not parallel.

func TestSetupDisabledRecordsNothing(t *testing.T) {
	t.Setenv(telemetry.EnvEndpoint, "")
	t.Setenv(telemetry.EnvTracesEndpoint, "")
	shutdown, err := telemetry.Setup(context.Background(), "edge")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	if telemetry.Enabled() || telemetry.Tracing() {
		t.Fatal("tracing on without an OTLP endpoint")
	}
	ctx, span := telemetry.Start(context.Background(), "x", trace.SpanKindInternal)
	if span.IsRecording() || ctx != context.Background() {
		t.Fatal("a span recorded or the context changed with tracing off")
	}
	if n := testing.AllocsPerRun(100, func() {
		_, span := telemetry.Start(context.Background(), "x", trace.SpanKindServer)
		span.End()
	}); n != 0 {
		t.Fatalf("an untraced span allocates %v times", n)
	}
	// An incoming trace still flows through, non-recording.
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx, span = telemetry.Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "x", trace.SpanKindInternal)
	if span.IsRecording() || trace.SpanContextFromContext(ctx).TraceID() != sc.TraceID() {
		t.Fatal("the caller's trace was lost")
	}
	if !slices.Contains(otel.GetTextMapPropagator().Fields(), "traceparent") {
		t.Fatalf("propagator fields %v", otel.GetTextMapPropagator().Fields())
	}
}

func TestSetupExportsOTLP(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv(telemetry.EnvEndpoint, srv.URL)
	t.Setenv(telemetry.EnvServiceName, "")
	shutdown, err := telemetry.Setup(context.Background(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	if !telemetry.Tracing() {
		t.Fatal("no SDK provider with an OTLP endpoint")
	}
	_, span := telemetry.Start(context.Background(), "exported", trace.SpanKindInternal)
	if !span.IsRecording() {
		t.Fatal("span does not record")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("shutdown did not flush the span to the OTLP endpoint")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestServiceName(t *testing.T) {
	t.Setenv(telemetry.EnvServiceName, "")
	if got := telemetry.ServiceName("meter"); got != "gatehouse-meter" {
		t.Fatal(got)
	}
	t.Setenv(telemetry.EnvServiceName, "my-meter")
	if got := telemetry.ServiceName("meter"); got != "my-meter" {
		t.Fatal(got)
	}
}
