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

// startHTTPSpan starts the server span of r, named name ("<method>
// <route>", a constant: route is a fixed pattern, never the raw path), continuing the client's
// trace when it sent a W3C traceparent header. It returns r with the span
// in its context and w wrapped to record the status, both unchanged when
// the span does not record (tracing off: no allocation).
func startHTTPSpan(w http.ResponseWriter, r *http.Request, name, route string) (http.ResponseWriter, *http.Request, trace.Span) {
	ctx := r.Context()
	if r.Header.Get("Traceparent") != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := telemetry.Start(ctx, name, trace.SpanKindServer)
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	if !span.IsRecording() {
		return w, r, span
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", route),
		attribute.String("url.scheme", scheme(r)),
	)
	return &statusWriter{ResponseWriter: w, span: span}, r, span
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// statusWriter records the response status on a span; Unwrap keeps
// http.ResponseController (flush, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	span  trace.Span
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.span.SetAttributes(attribute.Int("http.response.status_code", code))
		if code >= 500 {
			w.span.SetStatus(codes.Error, http.StatusText(code))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
