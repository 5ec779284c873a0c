package chat

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// Span names of a chat request's steps. They are fixed: request data
// (users, models, ids) goes into attributes, never into a name.
const (
	spanAuthorize = "authz check"
	spanCacheGet  = "cache get"
	spanCachePut  = "cache put"
	spanReserve   = "meter reserve"
	spanSettle    = "meter settle"
	attrRequestID = "gatehouse.request_id"
	attrCacheHit  = "gatehouse.cache.hit"
	// attrCacheIndexAbsent marks a lookup answered as a miss by the
	// replica's key index, without asking the cache service.
	attrCacheIndexAbsent = "gatehouse.cache.index_absent"
	attrErrorType        = "error.type"
	// attrReasoningEffort is the reasoning effort a model call asked for
	// (the GenAI conventions have no attribute for it).
	attrReasoningEffort = "gatehouse.request.reasoning_effort"
	// error.type values of a failed chat request span.
	errTypeNotAuthorized = "not_authorized" // model access refused or not checked
	errTypeNotReserved   = "not_reserved"   // quota refused or meter unavailable
	errTypeNoAnswer      = "no_answer"      // the model failed or a guardrail blocked it
	genAIEcho            = "gatehouse.echo"
	genAIOpChat          = "chat"
	genAIBedrock         = "aws.bedrock"
	genAIOpenAI          = "openai"
	spanModelPrefix      = genAIOpChat + " " // + model id, as the GenAI conventions name it
	// eventFirstDeltaPublished marks, on the chat request span, the moment
	// the first text delta was handed to NATS.
	eventFirstDeltaPublished = "first delta published"
)

// genAIProvider maps a provider type to its gen_ai.provider.name.
func genAIProvider(typ string) string {
	if typ == ProviderTypeBedrock {
		return genAIBedrock
	}
	return genAIOpenAI
}

// startClient starts a client span for a step of the request.
func startClient(ctx context.Context, name string) (context.Context, trace.Span) {
	return telemetry.Start(ctx, name, trace.SpanKindClient)
}

// failSpan marks span failed with an error type (a bus.ErrType*).
func failSpan(span trace.Span, errType string) {
	if span.IsRecording() {
		span.SetStatus(codes.Error, errType)
		span.SetAttributes(attribute.String(attrErrorType, errType))
	}
}

// startModelSpan starts the GenAI client span of one upstream attempt.
// The upstream model id is configured (bounded), so it may name the span.
func startModelSpan(ctx context.Context, up *upstream, call *provider.Call) (context.Context, trace.Span) {
	if !telemetry.Tracing() {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	ctx, span := telemetry.Start(ctx, spanModelPrefix+call.Model, trace.SpanKindClient)
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrGenAIOperationName.String(genAIOpChat),
			telemetry.AttrGenAISystem.String(up.genAI),
			telemetry.AttrGenAIProviderName.String(up.genAI),
			telemetry.AttrGenAIRequestModel.String(call.Model),
			telemetry.AttrGenAIMaxTokens.Int(call.MaxTokens),
			attribute.String("gatehouse.provider", up.p.Name()),
		)
		setRequestAttributes(span, call)
	}
	return ctx, span
}

// setRequestAttributes records the call's optional generation parameters
// and output type (GenAI semantic conventions), and its reasoning effort.
func setRequestAttributes(span trace.Span, call *provider.Call) {
	attrs := make([]attribute.KeyValue, 0, 8)
	if call.Temperature != nil {
		attrs = append(attrs, telemetry.AttrGenAITemperature.Float64(*call.Temperature))
	}
	if call.TopP != nil {
		attrs = append(attrs, telemetry.AttrGenAITopP.Float64(*call.TopP))
	}
	if call.Seed != nil {
		attrs = append(attrs, telemetry.AttrGenAISeed.Int64(*call.Seed))
	}
	if call.PresencePenalty != nil {
		attrs = append(attrs, telemetry.AttrGenAIPresencePenalty.Float64(*call.PresencePenalty))
	}
	if call.FrequencyPenalty != nil {
		attrs = append(attrs, telemetry.AttrGenAIFrequencyPenalty.Float64(*call.FrequencyPenalty))
	}
	if len(call.StopSequences) > 0 {
		attrs = append(attrs, telemetry.AttrGenAIStopSequences.StringSlice(call.StopSequences))
	}
	if call.ReasoningEffort != "" {
		attrs = append(attrs, attribute.String(attrReasoningEffort, call.ReasoningEffort))
	}
	out := "text"
	if call.Output != nil {
		out = "json"
	}
	attrs = append(attrs, telemetry.AttrGenAIOutputType.String(out))
	span.SetAttributes(attrs...)
}

// endModelSpan records an attempt's usage and outcome and ends its span.
func endModelSpan(span trace.Span, res provider.Result, err error) {
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrGenAIInputTokens.Int64(res.Usage.InputTokens),
			telemetry.AttrGenAIOutputTokens.Int64(res.Usage.OutputTokens),
		)
		if res.StopReason != "" {
			span.SetAttributes(telemetry.AttrGenAIFinishReasons.StringSlice([]string{res.StopReason}))
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "upstream call failed")
		}
	}
	span.End()
}
