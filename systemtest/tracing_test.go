package systemtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestTraceFollowsChatRequest sends one POST /v1/chat/completions with a
// client traceparent through the whole in-process stack and checks that
// edge, chat, authz, cache and meter recorded spans of the client's trace
// that chain parent to child across the NATS hops.
//
// It is not parallel: it installs the process-wide TracerProvider, and Go
// runs it while the parallel tests wait.
func TestTraceFollowsChatRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevProp := otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(prevProp)
		_ = tp.Shutdown(context.Background())
	})

	s := startOpenAIStack(t, providertest.Reply{
		Chunks: []string{"traced", " answer"},
		Usage:  &providertest.Usage{InputTokens: 7, OutputTokens: 2},
	})
	const (
		traceID      = "4bf92f3577b34da6a3ce929d0e0e4736"
		clientSpanID = "00f067aa0ba902b7"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := userParams("gpt", "trace me")
	params.Temperature = openai.Float(0.25)
	params.Seed = openai.Int(42)
	params.ReasoningEffort = shared.ReasoningEffortLow
	resp, err := s.client.Chat.Completions.New(ctx, params,
		option.WithHeader("traceparent", "00-"+traceID+"-"+clientSpanID+"-01"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "traced answer" {
		t.Fatalf("answer %+v", resp.Choices)
	}

	// Chat ends its span after the answer (settle, usage record): wait.
	spans := waitSpans(t, exp, traceID, func(spans tracetest.SpanStubs) bool {
		return find(spans, "chat request", trace.SpanKindConsumer) != nil && find(spans, "cache put", trace.SpanKindServer) != nil
	})
	t.Logf("trace:\n%s", describe(spans))

	must := func(name string, kind trace.SpanKind) *tracetest.SpanStub {
		t.Helper()
		sp := find(spans, name, kind)
		if sp == nil {
			t.Fatalf("no %s span %q in the trace:\n%s", kind, name, describe(spans))
		}
		return sp
	}
	childOf := func(child, parent *tracetest.SpanStub) {
		t.Helper()
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Fatalf("%s %q has parent %s, want %s %q (%s)", child.SpanKind, child.Name, child.Parent.SpanID(),
				parent.SpanKind, parent.Name, parent.SpanContext.SpanID())
		}
	}

	edge := must("POST /v1/chat/completions", trace.SpanKindServer)
	if edge.Parent.SpanID().String() != clientSpanID || !edge.Parent.IsRemote() {
		t.Fatalf("edge span's parent %v is not the client's span %s", edge.Parent, clientSpanID)
	}
	if got := attr(edge, "http.response.status_code"); got.AsInt64() != 200 {
		t.Fatalf("edge status attribute %v", got)
	}
	childOf(must("authz verify", trace.SpanKindServer), edge)
	chat := must("chat request", trace.SpanKindConsumer)
	childOf(chat, edge)
	if !chat.Parent.IsRemote() {
		t.Fatal("chat's parent did not come over NATS")
	}
	// Each step of chat is a client span with the service's server span
	// under it, except a cache lookup that chat's key index answered as a
	// miss itself (marked on the span; the cache service is not asked).
	for _, step := range []string{"authz check", "cache get", "meter reserve", "meter settle", "cache put"} {
		client := must(step, trace.SpanKindClient)
		childOf(client, chat)
		server := findChild(spans, step, trace.SpanKindServer, client)
		if step == "cache get" && hasAttr(client, "gatehouse.cache.index_absent", attribute.BoolValue(true)) {
			if server != nil {
				t.Fatalf("a lookup the index answered still reached the cache service:\n%s", describe(spans))
			}
			continue
		}
		if server == nil {
			t.Fatalf("no server span %q under chat's client span:\n%s", step, describe(spans))
		}
	}
	// The edge's own publish check on the inbound channel.
	if findChild(spans, "authz check", trace.SpanKindServer, edge) == nil {
		t.Fatalf("no authz check under the edge span:\n%s", describe(spans))
	}
	// The upstream model call, with GenAI semantic-convention attributes.
	model := must("chat gpt-4o-mini", trace.SpanKindClient)
	childOf(model, chat)
	for k, want := range map[string]string{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "7", "gen_ai.usage.output_tokens": "2",
		"gen_ai.response.finish_reasons": `["end_turn"]`,
		"gen_ai.request.temperature":     "0.25", "gen_ai.request.seed": "42", "gen_ai.output.type": "text",
		"gatehouse.request.reasoning_effort": "low",
	} {
		if got := attr(model, attribute.Key(k)).Emit(); got != want {
			t.Errorf("model span %s = %q, want %q", k, got, want)
		}
	}
	// Streaming works through the edge's status-recording writer.
	stream := s.client.Chat.Completions.NewStreaming(ctx, userParams("gpt", "stream me"))
	var streamed strings.Builder
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			streamed.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || streamed.String() != "traced answer" {
		t.Fatalf("traced stream: %q %v", streamed.String(), err)
	}

	// POST /event (the AppSync HTTP publish) starts the trace the same way.
	const eventTraceID = "0af7651916cd43dd8448eb211c80319c"
	body := `{"channel":"/Inbound-Messages/` + s.sub + `","events":[` + referenceRequest(t, "trace me too", "gpt", "c1") + `]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.dev.EdgeURL()+"/event", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", s.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+eventTraceID+"-b7ad6b7169203331-01")
	res, err := httpClientTrusting(t, s.dev.CAFile()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /event: %s", res.Status)
	}
	evSpans := waitSpans(t, exp, eventTraceID, func(spans tracetest.SpanStubs) bool {
		return find(spans, "chat request", trace.SpanKindConsumer) != nil && find(spans, "meter settle", trace.SpanKindServer) != nil
	})
	publish := find(evSpans, "POST /event", trace.SpanKindServer)
	if publish == nil || publish.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Fatalf("no POST /event span under the client's:\n%s", describe(evSpans))
	}
	childOf(find(evSpans, "chat request", trace.SpanKindConsumer), publish)
	spans = append(spans, evSpans...)

	// A WebSocket publish has no traceparent: its span starts the trace.
	ws := dialAppSync(ctx, t, s.dev.EdgeURL(), s.dev.CAFile(), s.token)
	if f := ws.publish(ctx, "p1", "/Inbound-Messages/"+s.sub, referenceRequest(t, "trace the socket", "gpt", "c2")); f.Type != "publish_success" {
		t.Fatalf("WS publish: %+v", f)
	}
	var wsPublish *tracetest.SpanStub
	for deadline := time.Now().Add(20 * time.Second); wsPublish == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no WS publish span after 20s")
		}
		wsPublish = find(exp.GetSpans(), "WS publish", trace.SpanKindServer)
	}
	if wsPublish.Parent.IsValid() {
		t.Fatalf("WS publish span has a parent %v", wsPublish.Parent)
	}
	wsSpans := waitSpans(t, exp, wsPublish.SpanContext.TraceID().String(), func(spans tracetest.SpanStubs) bool {
		return find(spans, "chat request", trace.SpanKindConsumer) != nil
	})
	childOf(find(wsSpans, "chat request", trace.SpanKindConsumer), wsPublish)
	if findChild(wsSpans, "authz check", trace.SpanKindServer, wsPublish) == nil {
		t.Fatalf("no authz check under the WS publish span:\n%s", describe(wsSpans))
	}
	spans = append(spans, wsSpans...)

	// No span carries the caller's credentials or names them.
	for _, sp := range spans {
		if strings.Contains(sp.Name, s.sub) {
			t.Errorf("span name %q names the user", sp.Name)
		}
		for _, kv := range sp.Attributes {
			if v := kv.Value.Emit(); strings.Contains(v, s.token) || strings.Contains(v, s.sub) {
				t.Errorf("span %q attribute %s carries the caller's identity: %q", sp.Name, kv.Key, v)
			}
		}
	}
}

// waitSpans polls exp until the spans of traceID satisfy done.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, traceID string, done func(tracetest.SpanStubs) bool) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var spans tracetest.SpanStubs
		for _, sp := range exp.GetSpans() {
			if sp.SpanContext.TraceID().String() == traceID {
				spans = append(spans, sp)
			}
		}
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans of trace %s after 20s:\n%s", traceID, describe(spans))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(spans tracetest.SpanStubs, name string, kind trace.SpanKind) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name && spans[i].SpanKind == kind {
			return &spans[i]
		}
	}
	return nil
}

// findChild returns the span name of kind whose parent is parent.
func findChild(spans tracetest.SpanStubs, name string, kind trace.SpanKind, parent *tracetest.SpanStub) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name && spans[i].SpanKind == kind && spans[i].Parent.SpanID() == parent.SpanContext.SpanID() {
			return &spans[i]
		}
	}
	return nil
}

func attr(sp *tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range sp.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func describe(spans tracetest.SpanStubs) string {
	var b strings.Builder
	for _, sp := range spans {
		b.WriteString("  " + sp.SpanKind.String() + " " + sp.Name + " " + sp.SpanContext.SpanID().String() + " parent " + sp.Parent.SpanID().String() + "\n")
	}
	return b.String()
}

// hasAttr reports whether span has attribute key with value v.
func hasAttr(span *tracetest.SpanStub, key string, v attribute.Value) bool {
	for _, a := range span.Attributes {
		if string(a.Key) == key && a.Value == v {
			return true
		}
	}
	return false
}
