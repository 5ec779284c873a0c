package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
)

// InjectTrace writes the trace context of ctx into hdr as lowercase
// traceparent/tracestate headers (through [HeaderCarrier]) and returns
// hdr, allocated when nil. When ctx carries no trace it returns hdr as it
// is, without allocating. hdr is modified in place.
func InjectTrace(ctx context.Context, hdr nats.Header) nats.Header {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return hdr
	}
	if hdr == nil {
		hdr = nats.Header{}
	}
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(hdr))
	return hdr
}

// ExtractTrace returns ctx with the remote trace context carried by hdr,
// or ctx itself when hdr has no traceparent.
func ExtractTrace(ctx context.Context, hdr nats.Header) context.Context {
	if len(hdr[HeaderTraceparent]) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(hdr))
}

// TraceHandler adapts handle to micro with a server span: it extracts the
// caller's trace context from the request headers, starts a span named
// "<service> <endpoint>" (both fixed names, never request data), passes
// handle a ctx derived from base that carries it, and ends the span when
// handle returns. An error reply (req.Error) marks the span failed. It is
// the one place where micro handlers join a trace.
func TraceHandler(base context.Context, service, endpoint string, handle func(context.Context, micro.Request)) micro.Handler {
	name := service + " " + endpoint
	return micro.HandlerFunc(func(req micro.Request) {
		ctx, span := telemetry.Start(ExtractTrace(base, nats.Header(req.Headers())), name, trace.SpanKindServer)
		if !span.IsRecording() {
			handle(ctx, req)
			return
		}
		defer span.End()
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", req.Subject()),
			attribute.String("rpc.service", service),
			attribute.String("rpc.method", endpoint),
		)
		handle(ctx, &tracedRequest{Request: req, span: span})
	})
}

// tracedRequest records an error reply on its span.
type tracedRequest struct {
	micro.Request
	span trace.Span
}

func (r *tracedRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	r.span.SetStatus(codes.Error, description)
	r.span.SetAttributes(attribute.String("rpc.error_code", code))
	return r.Request.Error(code, description, data, opts...)
}
