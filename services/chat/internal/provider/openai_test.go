package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
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
				Model: "gpt-4o-mini", System: []bus.ContentBlock{{Text: "be brief"}, {Text: "be kind"}}, MaxTokens: 100, Temperature: &temp, TopP: &topP, StopSequences: []string{"END"},
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

// oaToolsCall is a call offering two tools with choice, in a conversation
// that already called them: an assistant message with text and two tool
// calls, a user message with their results (one an error) and text, an
// assistant message with only a tool call and a user message with only
// its result.
func oaToolsCall(choice *bus.ToolChoice) *Call {
	return &Call{
		Model:     "gpt-4o-mini",
		System:    []bus.ContentBlock{{Text: "sys"}},
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

// oaToolsBody is the request body of oaToolsCall without tool_choice.
const oaToolsBody = `{
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

// oaCollect runs o.Stream and returns what it emitted.
func oaCollect(t *testing.T, o *OpenAI, call *Call) ([]Delta, Result, error) {
	t.Helper()
	var got []Delta
	res, err := o.Stream(context.Background(), call, func(d Delta) error {
		got = append(got, d)
		return nil
	})
	return got, res, err
}

// TestOpenAITools runs a conversation with tool calls and results through
// the fake server, once per tool choice, and checks the body it received
// and what was emitted of an answer with text and two tool calls.
func TestOpenAITools(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		choice   *bus.ToolChoice
		want     any   // tool_choice; nil for none sent
		parallel *bool // parallel_tool_calls, sent as it is
	}{
		{name: "no choice"},
		{name: "auto", choice: &bus.ToolChoice{Auto: &struct{}{}}, want: "auto"},
		{name: "auto, one call a turn", choice: &bus.ToolChoice{Auto: &struct{}{}}, want: "auto", parallel: new(false)},
		{name: "parallel calls", parallel: new(true)},
		{name: "any", choice: &bus.ToolChoice{Any: &struct{}{}}, want: "required"},
		{name: "none", choice: &bus.ToolChoice{None: &struct{}{}}, want: "none"},
		{name: "tool", choice: &bus.ToolChoice{Tool: &bus.SpecificTool{Name: "get_time"}},
			want: map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewOpenAI(providertest.Reply{
				Chunks: []string{"Checking", " both."},
				ToolCalls: []providertest.ToolCall{
					{ID: "call_a", Name: "get_weather", InputChunks: []string{`{"ci`, `ty":"Par`, `is"}`}},
					{ID: "call_b", Name: "get_time", InputChunks: []string{`{}`}},
				},
				Usage: &providertest.Usage{InputTokens: 50, OutputTokens: 20},
			})
			defer fake.Close()
			o := &OpenAI{ProviderName: "oa", BaseURL: fake.URL}
			call := oaToolsCall(tc.choice)
			call.Tools.ParallelToolCalls = tc.parallel
			got, res, err := oaCollect(t, o, call)
			if err != nil {
				t.Fatal(err)
			}
			wantDeltas := []Delta{
				{Text: "Checking"},
				{Text: " both."},
				{Index: 1, ToolUse: &bus.ToolUseStart{ToolUseID: "call_a", Name: "get_weather"}},
				{Index: 1, ToolInput: `{"ci`},
				{Index: 1, ToolInput: `ty":"Par`},
				{Index: 1, ToolInput: `is"}`},
				{Index: 2, ToolUse: &bus.ToolUseStart{ToolUseID: "call_b", Name: "get_time"}},
				{Index: 2, ToolInput: `{}`},
			}
			if !reflect.DeepEqual(got, wantDeltas) {
				t.Errorf("deltas\n got %s\nwant %s", oaDeltasString(got), oaDeltasString(wantDeltas))
			}
			if in := oaToolInputs(got); in[1] != `{"city":"Paris"}` || in[2] != `{}` {
				t.Errorf("tool inputs %v", in)
			}
			wantRes := Result{StopReason: StopToolUse, Usage: bus.Usage{InputTokens: 50, OutputTokens: 20, TotalTokens: 70}}
			if res != wantRes {
				t.Errorf("result %+v, want %+v", res, wantRes)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(oaToolsBody), &want); err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				want["tool_choice"] = tc.want
			}
			if tc.parallel != nil {
				want["parallel_tool_calls"] = *tc.parallel
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
// no tool spec (no tools, so no tool_choice or parallel_tool_calls either,
// as OpenAI requires)
// and a message whose only blocks are empty text and a tool result.
func TestOpenAIToolsBodyEdges(t *testing.T) {
	t.Parallel()
	call := &Call{
		Model: "m", MaxTokens: 1,
		Tools: &bus.ToolConfig{Tools: []bus.Tool{{}}, ToolChoice: &bus.ToolChoice{Any: &struct{}{}}, ParallelToolCalls: new(false)},
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

// oaToolInputs joins the tool input pieces of deltas by block.
func oaToolInputs(deltas []Delta) map[int]string {
	out := map[int]string{}
	for _, d := range deltas {
		if d.ToolInput != "" {
			out[d.Index] += d.ToolInput
		}
	}
	return out
}

// oaDeltasString renders deltas for failure messages.
func oaDeltasString(deltas []Delta) string {
	var sb strings.Builder
	for _, d := range deltas {
		switch {
		case d.ToolUse != nil:
			fmt.Fprintf(&sb, "\n  [%d] start %s %s", d.Index, d.ToolUse.ToolUseID, d.ToolUse.Name)
		case d.ToolInput != "":
			fmt.Fprintf(&sb, "\n  [%d] input %q", d.Index, d.ToolInput)
		case d.Reasoning != "":
			fmt.Fprintf(&sb, "\n  [%d] reasoning %q", d.Index, d.Reasoning)
		default:
			fmt.Fprintf(&sb, "\n  [%d] text %q", d.Index, d.Text)
		}
	}
	return sb.String()
}

// oaSSEServer serves events as one chat completions stream, each as a data
// line, then [DONE].
func oaSSEServer(t *testing.T, events []string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestOpenAIToolCallStreams reads tool calls streamed the ways
// OpenAI-compatible servers stream them, written by hand.
func TestOpenAIToolCallStreams(t *testing.T) {
	t.Parallel()
	// frag is a chunk of one tool call fragment.
	frag := func(f string) string {
		return `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[` + f + `]},"finish_reason":null}]}`
	}
	finish := func(r string) string {
		return `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"` + r + `"}]}`
	}
	const usage = `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`
	start := func(block int, id, name string) Delta {
		return Delta{Index: block, ToolUse: &bus.ToolUseStart{ToolUseID: id, Name: name}}
	}
	input := func(block int, s string) Delta { return Delta{Index: block, ToolInput: s} }
	for _, tc := range []struct {
		name   string
		events []string
		want   []Delta
		stop   string
		out    int64 // output tokens
		est    bool  // output tokens estimated
		orphan bool  // the stream fails with an orphan fragment
	}{
		{
			name: "whole call in one fragment",
			events: []string{
				`{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}]}`,
				finish("tool_calls"), usage,
			},
			want: []Delta{start(1, "call_1", "get_weather"), input(1, `{"city":"Paris"}`)},
			stop: StopToolUse, out: 12,
		},
		{
			name: "parallel calls interleaved by index",
			events: []string{
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}`),
				frag(`{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{\"tz\""}}`),
				frag(`{"index":0,"function":{"arguments":"{\"city\":"}}`),
				// Some servers repeat the id (and type) on every fragment.
				frag(`{"index":1,"id":"call_2","type":"function","function":{"arguments":":\"CET\"}"}}`),
				frag(`{"index":0,"function":{"arguments":"\"Paris\"}"}}`),
				finish("tool_calls"), usage,
			},
			want: []Delta{
				start(1, "call_1", "get_weather"),
				start(2, "call_2", "get_time"), input(2, `{"tz"`),
				input(1, `{"city":`),
				input(2, `:"CET"}`),
				input(1, `"Paris"}`),
			},
			stop: StopToolUse, out: 12,
		},
		{
			name: "two calls in one chunk",
			events: []string{
				frag(`{"index":0,"id":"call_1","function":{"name":"a","arguments":"{}"}},{"index":1,"id":"call_2","function":{"name":"b","arguments":"{}"}}`),
				finish("tool_calls"), usage,
			},
			want: []Delta{start(1, "call_1", "a"), input(1, `{}`), start(2, "call_2", "b"), input(2, `{}`)},
			stop: StopToolUse, out: 12,
		},
		{
			name: "parallel calls all at index 0",
			events: []string{
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
				frag(`{"index":0,"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
				frag(`{"index":0,"function":{"arguments":"\"Rome\"}"}}`),
				finish("tool_calls"), usage,
			},
			want: []Delta{
				start(1, "call_1", "get_weather"), input(1, `{"city":"Paris"}`),
				start(2, "call_2", "get_weather"), input(2, `{"city":`), input(2, `"Rome"}`),
			},
			stop: StopToolUse, out: 12,
		},
		{
			name: "text then a call, legacy finish reason",
			events: []string{
				`{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me see."},"finish_reason":null}]}`,
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}`),
				frag(`{"index":0,"function":{"arguments":"{}"}}`),
				finish("function_call"), usage,
			},
			want: []Delta{{Text: "Let me see."}, start(1, "call_1", "get_weather"), input(1, `{}`)},
			stop: StopToolUse, out: 12,
		},
		{
			name: "finish reason stop with a call",
			events: []string{
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}`),
				finish("stop"), usage,
			},
			want: []Delta{start(1, "call_1", "get_weather"), input(1, `{}`)},
			stop: StopToolUse, out: 12,
		},
		{
			name: "truncated call",
			events: []string{
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}`),
				finish("length"), usage,
			},
			want: []Delta{start(1, "call_1", "get_weather"), input(1, `{"ci`)},
			stop: StopMaxTokens, out: 12,
		},
		{
			name: "no usage: the estimate counts tool names and arguments",
			events: []string{
				`{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
				finish("tool_calls"),
			},
			want: []Delta{{Text: "Hi"}, start(1, "call_1", "get_weather"), input(1, `{"city":"Paris"}`)},
			// "Hi" + "get_weather" + `{"city":"Paris"}`: 2+11+16 = 29
			// bytes, 8 tokens; the id is not the model's output.
			stop: StopToolUse, out: 8, est: true,
		},
		{
			name: "orphan fragment",
			events: []string{
				frag(`{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}`),
				frag(`{"index":1,"function":{"arguments":"{}"}}`),
				finish("tool_calls"), usage,
			},
			want:   []Delta{start(1, "call_1", "get_weather")},
			orphan: true, out: 3, est: true, // "get_weather"
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := oaSSEServer(t, tc.events)
			o := &OpenAI{ProviderName: "oa", BaseURL: srv.URL + "/v1", Client: srv.Client()}
			call := &Call{Model: "m", MaxTokens: 100, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "weather?"}}}}}
			got, res, err := oaCollect(t, o, call)
			if tc.orphan {
				var pe *Error
				if !errors.As(err, &pe) || pe.Kind != KindUpstream || !errors.Is(err, errOrphanFragment) ||
					!strings.Contains(err.Error(), "index 1 has no call open") {
					t.Fatalf("err %v, want an upstream error naming the orphan fragment", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("deltas\n got %s\nwant %s", oaDeltasString(got), oaDeltasString(tc.want))
			}
			if !tc.orphan && res.StopReason != tc.stop {
				t.Errorf("stop reason %q, want %q", res.StopReason, tc.stop)
			}
			u := res.Usage
			if u.OutputTokens != tc.out || u.Estimated != tc.est || u.TotalTokens != u.InputTokens+u.OutputTokens {
				t.Errorf("usage %+v, want %d output tokens, estimated %v", u, tc.out, tc.est)
			}
			for block, in := range oaToolInputs(got) {
				if !json.Valid([]byte(in)) && !tc.orphan && tc.stop != StopMaxTokens {
					t.Errorf("block %d input %q is not JSON", block, in)
				}
			}
		})
	}
}

// FuzzOpenAIToolCalls feeds the tool call fragments of a stream to
// [oaCalls]: starts number blocks 1, 2, ... in order, every other
// fragment lands in a started block, and the only failure is an orphan.
func FuzzOpenAIToolCalls(f *testing.F) {
	f.Add([]byte(`data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":""}}]}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}` + "\n\n"))
	f.Add([]byte(`data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x"}},{"index":0,"id":"b"},{"index":-1,"function":{"name":"y"}}]}}]}` + "\n\n"))
	f.Add([]byte(`data: {"choices":[{"delta":{"tool_calls":[{"index":3,"function":{"arguments":"{}"}}]}}]}` + "\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var calls oaCalls
		started := map[int]bool{}
		_ = readSSE(bytes.NewReader(stream), func(data []byte) error {
			var c oaChunk
			if json.Unmarshal(data, &c) != nil {
				return nil
			}
			for _, ch := range c.Choices {
				for i := range ch.Delta.ToolCalls {
					block, start, err := calls.add(&ch.Delta.ToolCalls[i])
					switch {
					case err != nil:
						if !errors.Is(err, errOrphanFragment) {
							t.Fatalf("error %v", err)
						}
					case start != nil:
						if block != len(started)+1 {
							t.Fatalf("start of block %d after %d blocks", block, len(started))
						}
						started[block] = true
					case !started[block]:
						t.Fatalf("fragment for block %d, never started", block)
					}
				}
			}
			return nil
		})
	})
}

// BenchmarkOpenAIBody encodes the body of a text-only conversation: a
// system prompt and ten turns.
func BenchmarkOpenAIBody(b *testing.B) {
	call := &Call{Model: "gpt-4o-mini", System: []bus.ContentBlock{{Text: "be brief"}}, MaxTokens: 100}
	for i := range 10 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		call.Messages = append(call.Messages, bus.Message{Role: role, Content: []bus.ContentBlock{{Text: strings.Repeat("word ", 40)}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (&OpenAI{}).body(call); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenAIImages sends a conversation with images through the fake
// server: a user message with text, a PNG and text; a user message with a
// tool result, a JPEG and text; plain messages around them. Messages with
// images carry content parts in block order (the tool result still a
// "tool" message before its user message), the others plain strings, and
// each image's data URL decodes to the image's bytes.
func TestOpenAIImages(t *testing.T) {
	t.Parallel()
	pngImg, jpegImg := tinyImage(t, bus.ImagePNG), tinyImage(t, bus.ImageJPEG)
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"Red."}, Usage: &providertest.Usage{InputTokens: 900, OutputTokens: 2}})
	defer fake.Close()
	o := &OpenAI{ProviderName: "oa", BaseURL: fake.URL}
	call := &Call{
		Model: "gpt-4o", System: []bus.ContentBlock{{Text: "sys"}}, MaxTokens: 100,
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "What is in this image?"}, {Image: pngImg}, {Text: "One word."}}},
			{Role: "assistant", Content: []bus.ContentBlock{
				{Text: "Let me zoom."},
				{ToolUse: &bus.ToolUseBlock{ToolUseID: "call_1", Name: "zoom", Input: json.RawMessage(`{"factor":2}`)}},
			}},
			{Role: "user", Content: []bus.ContentBlock{
				{ToolResult: &bus.ToolResultBlock{ToolUseID: "call_1", Content: []bus.ToolResultContent{{Text: "zoomed"}}}},
				{Image: jpegImg},
				{Text: "Zoomed in."},
			}},
			{Role: "assistant", Content: []bus.ContentBlock{{Text: "A red dot."}}},
			{Role: "user", Content: []bus.ContentBlock{{Text: "Thanks."}}},
		},
	}
	got, res, err := oaCollect(t, o, call)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "Red." || res.Usage.InputTokens != 900 {
		t.Fatalf("deltas %+v, result %+v", got, res)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}

	pngURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngImg.Source.Bytes)
	jpegURL := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpegImg.Source.Bytes)
	var want []any
	if err := json.Unmarshal([]byte(`[
		{"role": "system", "content": "sys"},
		{"role": "user", "content": [
			{"type": "text", "text": "What is in this image?"},
			{"type": "image_url", "image_url": {"url": "`+pngURL+`"}},
			{"type": "text", "text": "One word."}
		]},
		{"role": "assistant", "content": "Let me zoom.", "tool_calls": [
			{"id": "call_1", "type": "function", "function": {"name": "zoom", "arguments": "{\"factor\":2}"}}
		]},
		{"role": "tool", "tool_call_id": "call_1", "content": "zoomed"},
		{"role": "user", "content": [
			{"type": "image_url", "image_url": {"url": "`+jpegURL+`"}},
			{"type": "text", "text": "Zoomed in."}
		]},
		{"role": "assistant", "content": "A red dot."},
		{"role": "user", "content": "Thanks."}
	]`), &want); err != nil {
		t.Fatal(err)
	}
	msgs, _ := reqs[0].Body["messages"].([]any)
	if !reflect.DeepEqual(msgs, want) {
		g, _ := json.MarshalIndent(msgs, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("messages\n got %s\nwant %s", g, w)
	}

	// The data URLs decode to the images' bytes.
	for _, c := range []struct {
		msg, part int
		img       *bus.ImageBlock
	}{{1, 1, pngImg}, {4, 0, jpegImg}} {
		url := msgs[c.msg].(map[string]any)["content"].([]any)[c.part].(map[string]any)["image_url"].(map[string]any)["url"].(string)
		prefix := "data:" + c.img.MediaType() + ";base64,"
		if !strings.HasPrefix(url, prefix) {
			t.Fatalf("messages[%d] image URL %.40q... does not start with %q", c.msg, url, prefix)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, prefix))
		if err != nil {
			t.Fatalf("messages[%d] image: %v", c.msg, err)
		}
		if !bytes.Equal(b, c.img.Source.Bytes) {
			t.Fatalf("messages[%d] image decodes to %d bytes unlike the %d sent", c.msg, len(b), len(c.img.Source.Bytes))
		}
	}
}

// TestOpenAIReasoningEffort: a call's reasoning effort is sent as
// reasoning_effort, unless chat merged the model's mapping of it into the
// request fields, which then say alone what is sent (reasoning_effort
// included).
func TestOpenAIReasoningEffort(t *testing.T) {
	t.Parallel()
	msgs := []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}
	for _, tc := range []struct {
		name string
		call *Call
		want string
	}{
		{"passed", &Call{Model: "m", MaxTokens: 1, Messages: msgs, ReasoningEffort: bus.ReasoningEffortHigh},
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"reasoning_effort":"high","stream":true,"stream_options":{"include_usage":true}}`},
		{"mapped", &Call{Model: "m", MaxTokens: 1, Messages: msgs, ReasoningEffort: bus.ReasoningEffortXHigh, ReasoningMapped: true, RequestFields: json.RawMessage(`{"reasoning_effort":"high","top_k":5}`)},
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"stream":true,"stream_options":{"include_usage":true},"reasoning_effort":"high","top_k":5}`},
	} {
		got, err := (&OpenAI{}).body(tc.call)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: body\n got %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

// TestOpenAIParams: each OpenAI parameter of a call is sent under
// OpenAI's name as it came, and a call without them (nil, or empty)
// sends none.
func TestOpenAIParams(t *testing.T) {
	t.Parallel()
	msgs := []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}
	const plain = `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"stream":true,"stream_options":{"include_usage":true}}`
	for _, tc := range []struct {
		name string
		p    *bus.OpenAIParams
		want string
	}{
		{"none", nil, plain},
		{"empty", &bus.OpenAIParams{LogitBias: map[string]float64{}}, plain},
		{"all", &bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100, "1734": 2.5}, Verbosity: "low", User: "user-1",
			SafetyIdentifier: "h4sh", PromptCacheKey: "prefix-7", ServiceTier: "flex"},
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"logit_bias":{"1734":2.5,"50256":-100},"verbosity":"low",` +
				`"user":"user-1","safety_identifier":"h4sh","prompt_cache_key":"prefix-7","service_tier":"flex","stream":true,"stream_options":{"include_usage":true}}`},
		{"one hint", &bus.OpenAIParams{ServiceTier: "priority"},
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"service_tier":"priority","stream":true,"stream_options":{"include_usage":true}}`},
	} {
		got, err := (&OpenAI{}).body(&Call{Model: "m", MaxTokens: 1, Messages: msgs, OpenAI: tc.p})
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: body\n got %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

// TestTakesOpenAIParam: OpenAI-compatible servers and echo take
// logit_bias and verbosity, Bedrock neither.
func TestTakesOpenAIParam(t *testing.T) {
	t.Parallel()
	for _, param := range []string{bus.ParamLogitBias, bus.ParamVerbosity} {
		if !TakesOpenAIParam(&OpenAI{}, param) || !TakesOpenAIParam(&Echo{}, param) || TakesOpenAIParam(&Bedrock{}, param) {
			t.Errorf("%s: openai %t, echo %t, bedrock %t", param, TakesOpenAIParam(&OpenAI{}, param), TakesOpenAIParam(&Echo{}, param), TakesOpenAIParam(&Bedrock{}, param))
		}
	}
}

func TestWithFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, extra, want string }{
		{`{"model":"m"}`, `{"top_k":20}`, `{"model":"m","top_k":20}`},
		{`{"model":"m"}`, ` { "a" : [1] , "b":{} } `, `{"model":"m","a" : [1] , "b":{}}`},
		{`{"model":"m"}`, `{}`, `{"model":"m"}`},
		{`{"model":"m"}`, `{ }`, `{"model":"m"}`},
	} {
		got, err := withFields([]byte(tc.body), []byte(tc.extra))
		if err != nil || string(got) != tc.want || !json.Valid(got) {
			t.Errorf("withFields(%s, %s) = %s, %v; want %s", tc.body, tc.extra, got, err, tc.want)
		}
	}
	if _, err := withFields([]byte(`{"model":"m"}`), []byte(`[1]`)); err == nil {
		t.Error("an array was added as fields")
	}
}
