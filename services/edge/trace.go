package edge

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
)

// spanWSPublish names the span of a WebSocket publish.
const spanWSPublish = "WS publish"

// eventFirstChunkFlushed marks, on an OpenAI API request's span, the
// moment its first chunk (the first token) was written and flushed to the
// client.
const eventFirstChunkFlushed = "first chunk flushed"

// startHTTPSpan starts the server span of r, named name ("<method>
// <route>", a constant: route is a fixed pattern, never the raw path),
// continuing the client's trace when it sent a W3C traceparent header. It
// returns r with the span in its context and w wrapped (a statusRecorder)
// so the span's End records the response status; both are unchanged when
// the span does not record (tracing off: no allocation).
func startHTTPSpan(w http.ResponseWriter, r *http.Request, name, route string) (http.ResponseWriter, *http.Request, httpSpan) {
	ctx := r.Context()
	if r.Header.Get("Traceparent") != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := telemetry.Start(ctx, name, trace.SpanKindServer)
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	if !span.IsRecording() {
		return w, r, httpSpan{span: span}
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", route),
		attribute.String("url.scheme", scheme(r)),
	)
	rec := &statusRecorder{ResponseWriter: w}
	return rec, r, httpSpan{span: span, rec: rec}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// httpSpan is an HTTP server span and, when it records, the status of
// the response it covers.
type httpSpan struct {
	span trace.Span
	rec  *statusRecorder // nil when the span does not record
}

// End records the response status (a 5xx marks the span failed) and ends
// the span.
func (h httpSpan) End() {
	if h.rec != nil && h.rec.status != 0 {
		h.span.SetAttributes(attribute.Int("http.response.status_code", h.rec.status))
		if h.rec.status >= 500 {
			h.span.SetStatus(codes.Error, http.StatusText(h.rec.status))
		}
	}
	h.span.End()
}
