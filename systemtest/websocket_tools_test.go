package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestWebSocketToolCall uses tools over the AppSync Events protocol, with
// Converse-shaped requests as a Bedrock-native client sends them: the
// model's tool call arrives as contentBlockStart and toolUse input deltas,
// and the next request carries the toolUse and its toolResult, which reach
// the OpenAI-compatible upstream as tool_calls and a tool message.
func TestWebSocketToolCall(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"It is", " sunny."}})
	s.fake.Push(providertest.Reply{ToolCalls: []providertest.ToolCall{{ID: "call_ws1", Name: "get_weather", InputChunks: []string{`{"city":`, `"Lima"}`}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialAppSync(ctx, t, s.dev.EdgeURL(), s.dev.CAFile(), s.token)
	if f := c.subscribe(ctx, "sub-1", "/Outbound-Messages/"+s.sub); f.Type != "subscribe_success" {
		t.Fatalf("subscribe: %+v", f)
	}
	tools := map[string]any{"tools": []any{map[string]any{"toolSpec": map[string]any{
		"name": "get_weather", "description": "Weather of a city",
		"inputSchema": map[string]any{"json": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}},
	}}}}
	ask := map[string]any{"role": "user", "content": []any{map[string]any{"text": "weather in Lima?"}}}
	publish := func(id string, messages ...any) []bus.Event {
		t.Helper()
		req, _ := json.Marshal(map[string]any{"modelId": "gpt", "conversationId": "ws-tools", "messages": messages, "toolConfig": tools})
		if f := c.publish(ctx, id, "/Inbound-Messages/"+s.sub, string(req)); f.Type != "publish_success" {
			t.Fatalf("publish: %+v", f)
		}
		return collectAnswer(ctx, t, c, "sub-1")
	}

	var got []string
	for _, ev := range publish("pub-1", ask) {
		switch {
		case ev.ContentBlockStart != nil:
			u := ev.ContentBlockStart.Start.ToolUse
			got = append(got, fmt.Sprintf("start %d %s %s", ev.ContentBlockStart.ContentBlockIndex, u.ToolUseID, u.Name))
		case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.Delta.ToolUse != nil:
			got = append(got, "input "+ev.ContentBlockDelta.Delta.ToolUse.Input)
		case ev.MessageStop != nil:
			got = append(got, "stop "+ev.MessageStop.StopReason)
		case ev.Error != nil:
			t.Fatalf("error event %+v", ev.Error)
		}
	}
	if want := `start 1 call_ws1 get_weather|input {"city":|input "Lima"}|stop tool_use`; strings.Join(got, "|") != want {
		t.Fatalf("events %s, want %s", strings.Join(got, "|"), want)
	}

	call := map[string]any{"role": "assistant", "content": []any{map[string]any{"toolUse": map[string]any{
		"toolUseId": "call_ws1", "name": "get_weather", "input": map[string]any{"city": "Lima"}}}}}
	result := map[string]any{"role": "user", "content": []any{map[string]any{"toolResult": map[string]any{
		"toolUseId": "call_ws1", "content": []any{map[string]any{"json": map[string]any{"sky": "clear", "celsius": 24}}}}}}}
	evs := publish("pub-2", ask, call, result)
	var text strings.Builder
	for _, ev := range evs {
		if ev.ContentBlockDelta != nil {
			text.WriteString(ev.ContentBlockDelta.Delta.Text)
		}
	}
	if text.String() != "It is sunny." || evs[len(evs)-1].Metadata == nil {
		t.Fatalf("answer %q, last event %+v", text.String(), evs[len(evs)-1])
	}
	reqs := s.fake.Requests()
	msgs, _ := json.Marshal(reqs[len(reqs)-1].Body["messages"])
	want := `[{"content":"weather in Lima?","role":"user"},` +
		`{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Lima\"}","name":"get_weather"},"id":"call_ws1","type":"function"}]},` +
		`{"content":"{\"celsius\":24,\"sky\":\"clear\"}","role":"tool","tool_call_id":"call_ws1"}]`
	if string(msgs) != want {
		t.Fatalf("upstream messages\n got %s\nwant %s", msgs, want)
	}
}
