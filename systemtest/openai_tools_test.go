package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// weatherTool is the function tool of the tool tests.
func weatherTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: openai.String("Current weather of a city"),
		Parameters: openai.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}},
			"required":   []string{"city"},
		},
	})
}

// TestOpenAIToolCalls is function calling through the whole system with
// the official SDK as the client and a fake OpenAI-compatible upstream:
// the model's streamed tool call reaches the SDK's accumulator whole, the
// caller sends the tool's result back and gets the final answer, the
// upstream sees tools, tool_choice, parallel_tool_calls, the assistant's tool_calls and the
// tool message, and the ledger records both requests. An answer that
// calls tools is never served from the cache; a text answer to a request
// with tools is cached under a key that includes them.
func TestOpenAIToolCalls(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"It is", " 18 C in Paris."}, Usage: &providertest.Usage{InputTokens: 40, OutputTokens: 8}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := providertest.Reply{
		Chunks:    []string{"Let me check."},
		ToolCalls: []providertest.ToolCall{{ID: "call_abc123", Name: "get_weather", InputChunks: []string{`{"city":`, ` "Paris"}`}}},
		Usage:     &providertest.Usage{InputTokens: 30, OutputTokens: 12},
	}

	// 1. Streamed: the SDK accumulates the tool call.
	s.fake.Push(call)
	params := userParams("gpt", "weather in Paris?")
	params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool()}
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")}
	params.ParallelToolCalls = openai.Bool(false)
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := s.client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		acc.AddChunk(stream.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	msg := acc.Choices[0].Message
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].ID != "call_abc123" || msg.ToolCalls[0].Function.Name != "get_weather" ||
		msg.ToolCalls[0].Function.Arguments != `{"city": "Paris"}` || msg.Content != "Let me check." || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("accumulated message %+v finish %q", msg, acc.Choices[0].FinishReason)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != `{"city": "Paris"}` {
		t.Fatalf("finished tool calls %+v", finished)
	}
	if acc.Usage.PromptTokens != 30 || acc.Usage.CompletionTokens != 12 {
		t.Fatalf("usage %+v", acc.Usage)
	}
	var args struct{ City string }
	if err := json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args); err != nil || args.City != "Paris" {
		t.Fatalf("arguments %q: %v", msg.ToolCalls[0].Function.Arguments, err)
	}
	reqs := s.fake.Requests()
	body := reqs[len(reqs)-1].Body
	tools, _ := body["tools"].([]any)
	if len(tools) != 1 || body["tool_choice"] != "auto" || body["parallel_tool_calls"] != false {
		t.Fatalf("upstream tools %v tool_choice %v parallel_tool_calls %v", body["tools"], body["tool_choice"], body["parallel_tool_calls"])
	}
	fn, _ := tools[0].(map[string]any)["function"].(map[string]any)
	if fn["name"] != "get_weather" || fn["description"] != "Current weather of a city" || fn["parameters"].(map[string]any)["required"].([]any)[0] != "city" {
		t.Fatalf("upstream tool %v", tools[0])
	}
	firstID := strings.TrimPrefix(acc.ID, "chatcmpl-")
	if rows := waitLedgerRows(t, "pgx", s.dbURL, firstID); len(rows) != 1 || rows[0].Status != bus.UsageStatusOK || rows[0].OutputTokens != 12 {
		t.Fatalf("ledger of the call %+v", rows)
	}

	// 2. The tool's result goes back; the model answers, not streamed.
	follow := userParams("gpt", "weather in Paris?")
	follow.Tools = params.Tools
	follow.Messages = append(follow.Messages, msg.ToParam(), openai.ToolMessage("18 C, sunny", "call_abc123"))
	resp, err := s.client.Chat.Completions.New(ctx, follow)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "It is 18 C in Paris." || resp.Choices[0].FinishReason != "stop" || len(resp.Choices[0].Message.ToolCalls) != 0 {
		t.Fatalf("final answer %+v", resp.Choices[0])
	}
	reqs = s.fake.Requests()
	up, _ := json.Marshal(reqs[len(reqs)-1].Body["messages"])
	want := `[{"content":"be brief","role":"system"},{"content":"weather in Paris?","role":"user"},` +
		`{"content":"Let me check.","role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_abc123","type":"function"}]},` +
		`{"content":"18 C, sunny","role":"tool","tool_call_id":"call_abc123"}]`
	if string(up) != want {
		t.Fatalf("upstream messages\n got %s\nwant %s", up, want)
	}

	// 3. Not streamed, the same tool call is message.tool_calls, and it
	// reaches the upstream again: answers that call tools are not cached.
	s.fake.Push(call)
	before := len(s.fake.Requests())
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	resp, err = s.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	tc := resp.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].ID != "call_abc123" || tc[0].Function.Arguments != `{"city": "Paris"}` || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("non-streamed tool call %+v", resp.Choices[0])
	}
	if n := len(s.fake.Requests()); n != before+1 {
		t.Fatalf("upstream requests %d, want %d: a tool call was served from the cache", n, before+1)
	}

	// 4. A text answer to a request with tools is cached under a key
	// that includes them: the same request again is a hit, the same
	// messages without tools are not.
	plain := userParams("gpt", "just say hi")
	withTools := plain
	withTools.Tools = params.Tools
	for _, p := range []openai.ChatCompletionNewParams{withTools, withTools, plain} {
		if _, err := s.client.Chat.Completions.New(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.fake.Requests()); n != before+3 {
		t.Fatalf("upstream requests %d, want %d (first with tools, its repeat cached, then without tools)", n, before+3)
	}

	// 5. Errors name the field in the caller's numbering: a tool_choice
	// naming no tool, a tool result answering no call.
	bad := params
	bad.ToolChoice = openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_time"})
	var apiErr *openai.Error
	if _, err := s.client.Chat.Completions.New(ctx, bad); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "tool_choice.function.name" {
		t.Fatalf("unknown tool choice: %v", err)
	}
	orphan := follow
	orphan.Messages = append(append([]openai.ChatCompletionMessageParamUnion{}, follow.Messages[:3]...), openai.ToolMessage("18 C", "call_other"))
	if _, err := s.client.Chat.Completions.New(ctx, orphan); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "messages[3].tool_call_id" ||
		!strings.Contains(apiErr.Message, `"call_other" answers no tool call`) {
		t.Fatalf("orphan tool result: %v", err)
	}
}
