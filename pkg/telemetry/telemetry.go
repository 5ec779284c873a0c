package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names the tracer every Gatehouse span comes from.
const InstrumentationName = "github.com/gatehouse-ai/gatehouse"

// Environment variables read by [Setup] (the OTLP exporter reads the rest
// of the OTEL_EXPORTER_OTLP_* family itself).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvServiceName    = "OTEL_SERVICE_NAME"
)

// GenAI semantic-convention attribute keys (OpenTelemetry semantic
// conventions for generative AI). gen_ai.system is the older name of
// gen_ai.provider.name; both are set so either generation of backends
// understands the span.
const (
	AttrGenAISystem        = attribute.Key("gen_ai.system")
	AttrGenAIProviderName  = attribute.Key("gen_ai.provider.name")
	AttrGenAIOperationName = attribute.Key("gen_ai.operation.name")
	AttrGenAIRequestModel  = attribute.Key("gen_ai.request.model")
	AttrGenAIMaxTokens     = attribute.Key("gen_ai.request.max_tokens")
	AttrGenAIInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	AttrGenAIOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	AttrGenAIFinishReasons = attribute.Key("gen_ai.response.finish_reasons")

	AttrGenAITemperature      = attribute.Key("gen_ai.request.temperature")
	AttrGenAITopP             = attribute.Key("gen_ai.request.top_p")
	AttrGenAISeed             = attribute.Key("gen_ai.request.seed")
	AttrGenAIPresencePenalty  = attribute.Key("gen_ai.request.presence_penalty")
	AttrGenAIFrequencyPenalty = attribute.Key("gen_ai.request.frequency_penalty")
	AttrGenAIStopSequences    = attribute.Key("gen_ai.request.stop_sequences")
	// AttrGenAIOutputType is "text" or "json" (structured output).
	AttrGenAIOutputType = attribute.Key("gen_ai.output.type")
)

// ShutdownFunc flushes buffered spans and stops the exporter. It is safe
// to call more than once.
type ShutdownFunc func(context.Context) error

// Enabled reports whether the environment asks for OTLP export.
func Enabled() bool {
	return os.Getenv(EnvEndpoint) != "" || os.Getenv(EnvTracesEndpoint) != ""
}

// ServiceName is OTEL_SERVICE_NAME, or "gatehouse-<service>" when unset.
func ServiceName(service string) string {
	if n := os.Getenv(EnvServiceName); n != "" {
		return n
	}
	return "gatehouse-" + service
}

// Setup installs the global propagator (W3C TraceContext and Baggage) and
// TracerProvider for a process running service ("dev", "edge", ...). With
// export enabled (see [Enabled]) spans are batched to an OTLP/HTTP
// exporter, sampled as OTEL_TRACES_SAMPLER says (default: parent-based,
// always on); otherwise a no-op provider is installed. Call it once, at
// start, and call the returned func at exit to flush.
func Setup(ctx context.Context, service string) (ShutdownFunc, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", ServiceName(service)),
		attribute.String("service.namespace", "gatehouse"),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("telemetry: flush spans: %w", err)
		}
		return nil
	}, nil
}

// Tracer returns the Gatehouse tracer of the current global provider.
// It is cheap: call it where a span starts rather than keeping the result.
func Tracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer(InstrumentationName)
}

// Start starts a span of kind from [Tracer]. Under the no-op provider of
// [Setup] it returns ctx unchanged (any incoming trace context in it still
// propagates) and a no-op span, without allocating or even looking into
// ctx, so untraced requests pay next to nothing. Set attributes after
// Start, under span.IsRecording(), so building them is skipped as well.
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	tr := Tracer()
	if _, ok := tr.(noop.Tracer); ok {
		return ctx, noopSpan
	}
	return tr.Start(ctx, name, trace.WithSpanKind(kind))
}

var noopSpan trace.Span = noop.Span{}

// Tracing reports whether spans may record: false when the installed
// provider is the no-op one of [Setup]. Use it to skip building a span
// name or attributes that would be thrown away.
func Tracing() bool {
	_, ok := Tracer().(noop.Tracer)
	return !ok
}
