package provider

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIBodyTextOnly pins the encoding of a request without tools: it
// predates tool use and must not change.
func TestOpenAIBodyTextOnly(t *testing.T) {
	t.Parallel()
	temp, topP := 0.5, 0.9
	for _, tc := range []struct {
		name string
		call *Call
		want string
	}{
		{
			name: "minimal",
			call: &Call{Model: "m", MaxTokens: 1, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "full",
			call: &Call{
				Model: "gpt-4o-mini", System: []string{"be brief", "be kind"}, MaxTokens: 100, Temperature: &temp, TopP: &topP, StopSequences: []string{"END"},
				Messages: []bus.Message{
					{Role: "user", Content: []bus.ContentBlock{{Text: "hello"}, {Text: `<"there">`}}},
					{Role: "assistant", Content: []bus.ContentBlock{{Text: "hi"}, {Text: ""}}},
					{Role: "user", Content: []bus.ContentBlock{}},
					{Role: "user", Content: []bus.ContentBlock{{Text: "again"}}},
				},
			},
			want: `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"system","content":"be kind"},` +
				`{"role":"user","content":"hello\n\u003c\"there\"\u003e"},{"role":"assistant","content":"hi\n"},{"role":"user","content":""},{"role":"user","content":"again"}],` +
				`"max_tokens":100,"temperature":0.5,"top_p":0.9,"stop":["END"],"stream":true,"stream_options":{"include_usage":true}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := (&OpenAI{}).body(tc.call)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// toolsCall is a call offering two tools with choice, in a conversation
// that already called them: an assistant message with text and two tool
// calls, a user message with their results (one an error) and text, an
// assistant message with only a tool call and a user message with only
// its result.
func toolsCall(choice *bus.ToolChoice) *Call {
	return &Call{
		Model:     "gpt-4o-mini",
		System:    []string{"sys"},
		MaxTokens: 100,
		Tools: &bus.ToolConfig{
			Tools: []bus.Tool{
				{ToolSpec: &bus.ToolSpec{
					Name: "get_weather", Description: "Weather of a city",
					InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
				}},
				{ToolSpec: &bus.ToolSpec{Name: "get_time", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}},
			},
			ToolChoice: choice,
		},
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "Weather and time in Paris?"}}},
			{Role: "assistant", Content: []bus.ContentBlock{
				{Text: "Let me look."},
				{ToolUse: &bus.ToolUseBlock{ToolUseID: "call_1", Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)}},
				{ToolUse: &bus.ToolUseBlock{ToolUseID: "call_2", Name: "get_time", Input: json.RawMessage(`{}`)}},
			}},
			{Role: "user", Content: []bus.ContentBlock{
				{ToolResult: &bus.ToolResultBlock{ToolUseID: "call_1", Content: []bus.ToolResultContent{{Text: "sunny"}, {JSON: json.RawMessage(`{"tempC": 21}`)}}}},
				{ToolResult: &bus.ToolResultBlock{ToolUseID: "call_2", Status: bus.ToolResultError, Content: []bus.ToolResultContent{{Text: "clock unavailable"}}}},
				{Text: "Answer briefly."},
			}},
			{Role: "assistant", Content: []bus.ContentBlock{
				{ToolUse: &bus.ToolUseBlock{ToolUseID: "call_3", Name: "get_time", Input: json.RawMessage(`{"tz":"CET"}`)}},
			}},
			{Role: "user", Content: []bus.ContentBlock{
				{ToolResult: &bus.ToolResultBlock{ToolUseID: "call_3", Status: bus.ToolResultSuccess, Content: []bus.ToolResultContent{{JSON: json.RawMessage(`{"time":"12:00"}`)}}}},
			}},
		},
	}
}

// toolsBody is the request body of toolsCall without tool_choice.
const toolsBody = `{
	"model": "gpt-4o-mini",
	"max_tokens": 100,
	"stream": true,
	"stream_options": {"include_usage": true},
	"tools": [
		{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
			"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
		{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
	],
	"messages": [
		{"role": "system", "content": "sys"},
		{"role": "user", "content": "Weather and time in Paris?"},
		{"role": "assistant", "content": "Let me look.", "tool_calls": [
			{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
			{"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
		]},
		{"role": "tool", "tool_call_id": "call_1", "content": "sunny\n{\"tempC\": 21}"},
		{"role": "tool", "tool_call_id": "call_2", "content": "error: clock unavailable"},
		{"role": "user", "content": "Answer briefly."},
		{"role": "assistant", "content": null, "tool_calls": [
			{"id": "call_3", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}
		]},
		{"role": "tool", "tool_call_id": "call_3", "content": "{\"time\":\"12:00\"}"}
	]
}`

// collect runs o.Stream and returns what it emitted.
func collect(t *testing.T, o *OpenAI, call *Call) ([]Delta, Result, error) {
	t.Helper()
	var got []Delta
	res, err := o.Stream(context.Background(), call, func(d Delta) error {
		got = append(got, d)
		return nil
	})
	return got, res, err
}

// TestOpenAIToolsRequest runs a conversation with tool calls and results
// through the fake server, once per tool choice, and checks the body it
// received.
func TestOpenAIToolsRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		choice *bus.ToolChoice
		want   any // tool_choice; nil for none sent
	}{
		{name: "no choice"},
		{name: "auto", choice: &bus.ToolChoice{Auto: &struct{}{}}, want: "auto"},
		{name: "any", choice: &bus.ToolChoice{Any: &struct{}{}}, want: "required"},
		{name: "none", choice: &bus.ToolChoice{None: &struct{}{}}, want: "none"},
		{name: "tool", choice: &bus.ToolChoice{Tool: &bus.SpecificTool{Name: "get_time"}},
			want: map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"It is sunny."}, Usage: &providertest.Usage{InputTokens: 50, OutputTokens: 4}})
			defer fake.Close()
			o := &OpenAI{ProviderName: "oa", BaseURL: fake.URL}
			if _, _, err := collect(t, o, toolsCall(tc.choice)); err != nil {
				t.Fatal(err)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(toolsBody), &want); err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				want["tool_choice"] = tc.want
			}
			if got := reqs[0].Body; !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(want, "", "  ")
				t.Fatalf("body\n got %s\nwant %s", g, w)
			}
		})
	}
}

// TestOpenAIToolsBodyEdges covers tool configurations that send less:
// no tool spec (no tools, so no tool_choice either, as OpenAI requires)
// and a message whose only blocks are empty text and a tool result.
func TestOpenAIToolsBodyEdges(t *testing.T) {
	t.Parallel()
	call := &Call{
		Model: "m", MaxTokens: 1,
		Tools: &bus.ToolConfig{Tools: []bus.Tool{{}}, ToolChoice: &bus.ToolChoice{Any: &struct{}{}}},
		Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
			{Text: ""},
			{ToolResult: &bus.ToolResultBlock{ToolUseID: "c", Status: bus.ToolResultError}},
		}}},
	}
	got, err := (&OpenAI{}).body(call)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","messages":[{"role":"tool","content":"error: ","tool_call_id":"c"}],"max_tokens":1,"stream":true,"stream_options":{"include_usage":true}}`
	if string(got) != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}
