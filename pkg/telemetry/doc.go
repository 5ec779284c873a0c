// Package telemetry sets up OpenTelemetry tracing for a Gatehouse process.
//
// [Setup] installs the global TracerProvider and the W3C TraceContext
// propagator once per process. Spans are exported with OTLP/HTTP only when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// the exporter reads the other standard OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, compression, TLS). Otherwise the provider records
// nothing and a span costs almost nothing, while an incoming traceparent is
// still passed on so a caller's trace is not broken by a Gatehouse hop.
//
// Services never hold a tracer of their own: they call [Tracer] when they
// start a span, so a provider installed later (a test's in-memory one)
// takes effect at once. Trace context crosses NATS in lowercase
// traceparent/tracestate headers (see the bus package).
package telemetry
