package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// reasoningCall is a question a reasoning model thinks about first.
func reasoningCall() *Call {
	return &Call{Model: "m", MaxTokens: 100, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "What is 2+2?"}}}}}
}

// think and say are a reasoning and a text delta.
func think(block int, s string) Delta { return Delta{Index: block, Reasoning: s} }
func say(block int, s string) Delta   { return Delta{Index: block, Text: s} }

// reasoningReplies are the fake replies with reasoning both providers are
// run against, with the output tokens expected of each. Without usage the
// estimate counts the reasoning: "The user adds. " and "2+2 is 4." (15+9
// bytes) and "4." (2), 26 bytes, 7 tokens (the text alone would be 1).
var reasoningReplies = []struct {
	name string
	rep  providertest.Reply
	out  int64
	est  bool
}{
	{"usage", providertest.Reply{
		Reasoning: []string{"The user adds. ", "2+2 is 4."},
		Chunks:    []string{"4", "."},
		Usage:     &providertest.Usage{InputTokens: 12, OutputTokens: 30},
	}, 30, false},
	{"no usage", providertest.Reply{
		Reasoning: []string{"The user adds. ", "2+2 is 4."},
		Chunks:    []string{"4", "."},
	}, 7, true},
	{"tool call", providertest.Reply{
		Reasoning: []string{"Needs the clock."},
		Chunks:    []string{"Checking."},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "clock", InputChunks: []string{`{}`}}},
		Usage:     &providertest.Usage{InputTokens: 12, OutputTokens: 9},
	}, 9, false},
	{"tool call without text", providertest.Reply{
		Reasoning: []string{"Needs the clock."},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "clock", InputChunks: []string{`{}`}}},
		Usage:     &providertest.Usage{InputTokens: 12, OutputTokens: 7},
	}, 7, false},
}

// checkReasoning fails unless a stream of the reply named name emitted
// want and ended as the reply scripts, taking at least the reply's
// ChunkDelay between its reasoning pieces and text chunks.
func checkReasoning(t *testing.T, name string, rep providertest.Reply, out int64, est bool, got, want []Delta, res Result, took time.Duration) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deltas\n got %+v\nwant %+v", got, want)
	}
	stop := StopEndTurn
	if len(rep.ToolCalls) > 0 {
		stop = StopToolUse
	}
	if res.StopReason != stop {
		t.Errorf("stop reason %q, want %q", res.StopReason, stop)
	}
	in := EstimateInput(reasoningCall())
	if rep.Usage != nil {
		in = rep.Usage.InputTokens
	}
	if u := res.Usage; u.InputTokens != in || u.OutputTokens != out || u.Estimated != est || u.TotalTokens != in+out {
		t.Errorf("usage %+v, want %d in, %d out, estimated %v", u, in, out, est)
	}
	if least := time.Duration(len(rep.Reasoning)+len(rep.Chunks)-1) * rep.ChunkDelay; took < least {
		t.Errorf("%s took %v, less than the ChunkDelay before each piece but the first (%v)", name, took, least)
	}
}

// runReasoningReplies streams each of reasoningReplies (5 ms between
// pieces) with stream and checks it against wants[name].
func runReasoningReplies(t *testing.T, wants map[string][]Delta, stream func(*testing.T, providertest.Reply) ([]Delta, Result, error)) {
	t.Helper()
	for _, tc := range reasoningReplies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := tc.rep
			rep.ChunkDelay = 5 * time.Millisecond
			start := time.Now()
			got, res, err := stream(t, rep)
			if err != nil {
				t.Fatal(err)
			}
			checkReasoning(t, tc.name, rep, tc.out, tc.est, got, wants[tc.name], res, time.Since(start))
		})
	}
}

// signed is the signature delta the fake Bedrock ends reasoning block 0
// with.
func signed(text string) Delta {
	return Delta{Index: 0, ReasoningSignature: providertest.ReasoningSignature(text)}
}

// TestBedrockReasoning streams replies with reasoning from the fake:
// reasoning is block 0 and ends with its signature, the text is block 1
// and tool calls follow.
func TestBedrockReasoning(t *testing.T) {
	t.Parallel()
	wants := map[string][]Delta{
		"usage":    {think(0, "The user adds. "), think(0, "2+2 is 4."), signed("The user adds. 2+2 is 4."), say(1, "4"), say(1, ".")},
		"no usage": {think(0, "The user adds. "), think(0, "2+2 is 4."), signed("The user adds. 2+2 is 4."), say(1, "4"), say(1, ".")},
		"tool call": {
			think(0, "Needs the clock."), signed("Needs the clock."), say(1, "Checking."),
			{Index: 2, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-1", Name: "clock"}}, {Index: 2, ToolInput: `{}`},
		},
		"tool call without text": {
			think(0, "Needs the clock."), signed("Needs the clock."),
			{Index: 1, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-1", Name: "clock"}}, {Index: 1, ToolInput: `{}`},
		},
	}
	runReasoningReplies(t, wants, func(t *testing.T, rep providertest.Reply) ([]Delta, Result, error) {
		fake := providertest.NewBedrock(rep)
		t.Cleanup(fake.Close)
		return streamAll(t, bedrockOn(fake), reasoningCall())
	})
}

// bedrockEvents serves events, each an event type and its JSON payload,
// as one ConverseStream answer.
func bedrockEvents(t *testing.T, events [][2]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		enc := eventstream.NewEncoder()
		for _, e := range events {
			var hs eventstream.Headers
			hs.Set(":message-type", eventstream.StringValue("event"))
			hs.Set(":event-type", eventstream.StringValue(e[0]))
			hs.Set(":content-type", eventstream.StringValue("application/json"))
			var buf bytes.Buffer
			if err := enc.Encode(&buf, eventstream.Message{Headers: hs, Payload: []byte(e[1])}); err != nil {
				t.Error(err)
				return
			}
			w.Write(buf.Bytes())
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestBedrockReasoningDeltas reads a stream written by hand: non-empty
// reasoning text, the signature and the redacted content are emitted, and
// only text counts in the estimate.
func TestBedrockReasoningDeltas(t *testing.T) {
	t.Parallel()
	srv := bedrockEvents(t, [][2]string{
		{"messageStart", `{"role":"assistant"}`},
		{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"abcdefgh"}}}`},
		{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":""}}}`},
		{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"EqQBCkgIARABGAIiQL5fake"}}}`},
		{"contentBlockStop", `{"contentBlockIndex":0}`},
		{"contentBlockDelta", `{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"AAECAwQFBgcICQ=="}}}`},
		{"contentBlockStop", `{"contentBlockIndex":1}`},
		{"contentBlockDelta", `{"contentBlockIndex":2,"delta":{"text":"abcd"}}`},
		{"contentBlockStop", `{"contentBlockIndex":2}`},
		{"messageStop", `{"stopReason":"end_turn"}`},
		{"metadata", `{"metrics":{"latencyMs":1}}`},
	})
	got, res, err := streamAll(t, bedrockAt(srv.URL), reasoningCall())
	if err != nil {
		t.Fatal(err)
	}
	want := []Delta{
		think(0, "abcdefgh"), {Index: 0, ReasoningSignature: "EqQBCkgIARABGAIiQL5fake"},
		{Index: 1, ReasoningRedacted: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, say(2, "abcd"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deltas\n got %+v\nwant %+v", got, want)
	}
	// "abcdefgh" and "abcd": 12 bytes, 3 tokens; with the signature
	// (23 bytes) they would be 9, with the redacted content's 10 more 12.
	if u := res.Usage; u.OutputTokens != 3 || !u.Estimated || res.StopReason != StopEndTurn {
		t.Errorf("result %+v, want 3 estimated output tokens, end_turn", res)
	}
}

// TestOpenAIReasoning streams replies with reasoning from the fake, which
// sends it as delta.reasoning_content: reasoning and text are both block
// 0, tool calls 1, 2, ...
func TestOpenAIReasoning(t *testing.T) {
	t.Parallel()
	wants := map[string][]Delta{
		"usage":    {think(0, "The user adds. "), think(0, "2+2 is 4."), say(0, "4"), say(0, ".")},
		"no usage": {think(0, "The user adds. "), think(0, "2+2 is 4."), say(0, "4"), say(0, ".")},
		"tool call": {
			think(0, "Needs the clock."), say(0, "Checking."),
			{Index: 1, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-1", Name: "clock"}}, {Index: 1, ToolInput: `{}`},
		},
		"tool call without text": {
			think(0, "Needs the clock."),
			{Index: 1, ToolUse: &bus.ToolUseStart{ToolUseID: "tu-1", Name: "clock"}}, {Index: 1, ToolInput: `{}`},
		},
	}
	runReasoningReplies(t, wants, func(t *testing.T, rep providertest.Reply) ([]Delta, Result, error) {
		fake := providertest.NewOpenAI(rep)
		t.Cleanup(fake.Close)
		return oaCollect(t, &OpenAI{ProviderName: "oa", BaseURL: fake.URL}, reasoningCall())
	})
}

// TestOpenAIReasoningStreams reads reasoning streamed the ways
// OpenAI-compatible servers name it, written by hand.
func TestOpenAIReasoningStreams(t *testing.T) {
	t.Parallel()
	delta := func(d string) string {
		return `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":` + d + `,"finish_reason":null}]}`
	}
	const stop = `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	const usage = `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`
	for _, tc := range []struct {
		name   string
		events []string
		want   []Delta
		out    int64 // output tokens
		est    bool  // output tokens estimated
	}{
		{
			name: "reasoning (OpenRouter, Ollama)",
			events: []string{
				delta(`{"role":"assistant","content":"","reasoning":"Think"}`),
				delta(`{"reasoning":"ing."}`),
				delta(`{"reasoning":null,"content":"Yes"}`),
				stop,
			},
			want: []Delta{think(0, "Think"), think(0, "ing."), say(0, "Yes")},
			// "Think", "ing." and "Yes": 12 bytes, 3 tokens (the text
			// alone would be 1).
			out: 3, est: true,
		},
		{
			name: "reasoning_content (DeepSeek, vLLM)",
			events: []string{
				delta(`{"role":"assistant","content":null,"reasoning_content":"Think"}`),
				delta(`{"reasoning_content":"ing.","content":null}`),
				delta(`{"reasoning_content":null,"content":"Yes"}`),
				stop, usage,
			},
			want: []Delta{think(0, "Think"), think(0, "ing."), say(0, "Yes")},
			out:  12,
		},
		{
			// Servers moving from one name to the other send both.
			name: "both names",
			events: []string{
				delta(`{"reasoning_content":"Think","reasoning":"Think"}`),
				delta(`{"reasoning_content":"ing.","reasoning":"ing."}`),
				delta(`{"reasoning_content":"","reasoning":"","content":"Yes"}`),
				stop,
			},
			want: []Delta{think(0, "Think"), think(0, "ing."), say(0, "Yes")},
			// Reasoning counted once: 12 bytes, 3 tokens (twice, 21
			// bytes, would be 6).
			out: 3, est: true,
		},
		{
			name: "empty reasoning_content beside reasoning",
			events: []string{
				delta(`{"reasoning_content":"","reasoning":"Think"}`),
				delta(`{"content":"Yes"}`),
				stop, usage,
			},
			want: []Delta{think(0, "Think"), say(0, "Yes")},
			out:  12,
		},
		{
			name: "reasoning and text in one chunk",
			events: []string{
				delta(`{"reasoning":"Thinking.","content":"Yes"}`),
				stop, usage,
			},
			want: []Delta{think(0, "Thinking."), say(0, "Yes")},
			out:  12,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := oaSSEServer(t, tc.events)
			o := &OpenAI{ProviderName: "oa", BaseURL: srv.URL + "/v1", Client: srv.Client()}
			got, res, err := oaCollect(t, o, reasoningCall())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("deltas\n got %s\nwant %s", oaDeltasString(got), oaDeltasString(tc.want))
			}
			if res.StopReason != StopEndTurn {
				t.Errorf("stop reason %q, want %q", res.StopReason, StopEndTurn)
			}
			if u := res.Usage; u.OutputTokens != tc.out || u.Estimated != tc.est || u.TotalTokens != u.InputTokens+u.OutputTokens {
				t.Errorf("usage %+v, want %d output tokens, estimated %v", u, tc.out, tc.est)
			}
		})
	}
}

// thinkingTurn is the second turn of a conversation with Claude thinking
// enabled: the assistant's turn (first, the given blocks, then its tool
// call) and the tool's result.
func thinkingTurn(first ...bus.ContentBlock) *Call {
	assistant := append(first, bus.ContentBlock{ToolUse: &bus.ToolUseBlock{ToolUseID: "tu-1", Name: "clock", Input: json.RawMessage(`{}`)}})
	return &Call{
		Model: "m", MaxTokens: 2000,
		RequestFields: json.RawMessage(`{"thinking":{"type":"enabled","budget_tokens":1024}}`),
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "What time is it?"}}},
			{Role: "assistant", Content: assistant},
			{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "tu-1", Content: []bus.ToolResultContent{{Text: "12:00"}}}}}},
		},
		Tools: &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "clock", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}}}},
	}
}

// TestBedrockReasoningSentBack sends the reasoning of a turn that called a
// tool back with the tool's result, as Claude with extended thinking
// requires: the reasoning streamed (text and signature) becomes the
// assistant turn's first block, a reasoningContent with the same text and
// signature, and the fake, which checks both, answers. Without the block,
// or with its text altered, the fake refuses as Claude does, and the
// provider reports the refusal as rejected. Redacted reasoning goes back
// as its bytes.
func TestBedrockReasoningSentBack(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"Noon."}, Usage: &providertest.Usage{InputTokens: 40, OutputTokens: 2}})
	defer fake.Close()
	b := bedrockOn(fake)

	// The first turn's reasoning, as streamed.
	first := providertest.NewBedrock(providertest.Reply{
		Reasoning: []string{"I need ", "the clock."},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "clock", InputChunks: []string{`{}`}}},
	})
	defer first.Close()
	got, _, err := streamAll(t, bedrockOn(first), reasoningCall())
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	sig := ""
	for _, d := range got {
		if d.Index == 0 {
			text.WriteString(d.Reasoning)
			if d.ReasoningSignature != "" {
				sig = d.ReasoningSignature
			}
		}
	}
	if text.String() != "I need the clock." || sig == "" {
		t.Fatalf("first turn streamed reasoning %q with signature %q", text.String(), sig)
	}
	block := func(text, sig string) bus.ContentBlock {
		return bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: text, Signature: sig}}}
	}

	if _, _, err := streamAll(t, b, thinkingTurn(block(text.String(), sig))); err != nil {
		t.Fatalf("turn with its reasoning sent back: %v", err)
	}
	body := fake.Requests()[0].Body
	assistant := body["messages"].([]any)[1].(map[string]any)["content"].([]any)
	want := map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]any{"text": "I need the clock.", "signature": sig}}}
	if !reflect.DeepEqual(assistant[0], want) {
		t.Errorf("assistant turn's first block %v, want %v", assistant[0], want)
	}

	redacted := bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{RedactedContent: []byte{0, 1, 2, 250}}}
	if _, _, err := streamAll(t, b, thinkingTurn(redacted)); err != nil {
		t.Fatalf("turn with redacted reasoning sent back: %v", err)
	}
	assistant = fake.Requests()[1].Body["messages"].([]any)[1].(map[string]any)["content"].([]any)
	want = map[string]any{"reasoningContent": map[string]any{"redactedContent": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 250})}}
	if !reflect.DeepEqual(assistant[0], want) {
		t.Errorf("redacted block sent as %v, want %v", assistant[0], want)
	}

	for name, tc := range map[string]struct {
		call *Call
		msg  string
	}{
		"no reasoning": {thinkingTurn(), "Expected `thinking` or `redacted_thinking`, but found `tool_use`"},
		"altered text": {thinkingTurn(block("I need the calendar.", sig)), "Invalid `signature`"},
		"no signature": {thinkingTurn(block(text.String(), "")), "Invalid `signature`"},
	} {
		_, _, err := streamAll(t, b, tc.call)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != KindRejected || !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s: error %v, want a rejection containing %q", name, err, tc.msg)
		}
	}
}

// TestOpenAIReasoningNotSentBack sends a conversation holding reasoning
// blocks to an OpenAI-compatible server: they are left out (such servers
// take no reasoning back, and some refuse it), and the turn's text and
// tool call are sent as before.
func TestOpenAIReasoningNotSentBack(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"Noon."}})
	defer fake.Close()
	o := &OpenAI{ProviderName: "oa", BaseURL: fake.URL}
	call := thinkingTurn(bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "secret thoughts", Signature: "s"}}}, bus.ContentBlock{Text: "Checking."})
	call.RequestFields = nil
	call.Messages = append(call.Messages,
		bus.Message{Role: "assistant", Content: []bus.ContentBlock{{ReasoningContent: &bus.ReasoningBlock{RedactedContent: []byte("x")}}, {Text: "Noon."}}},
		bus.Message{Role: "user", Content: []bus.ContentBlock{{Text: "Thanks."}}})
	if _, _, err := oaCollect(t, o, call); err != nil {
		t.Fatal(err)
	}
	raw := string(fake.Requests()[0].Raw)
	if strings.Contains(raw, "secret thoughts") || strings.Contains(raw, "reasoning") {
		t.Errorf("reasoning sent to an OpenAI-compatible server: %s", raw)
	}
	msgs := fake.Requests()[0].Body["messages"].([]any)
	if c := msgs[1].(map[string]any)["content"]; c != "Checking." {
		t.Errorf("tool-calling turn's content %v, want \"Checking.\"", c)
	}
	if c := msgs[3].(map[string]any)["content"]; c != "Noon." {
		t.Errorf("plain turn's content %q, want \"Noon.\" (no empty line for the reasoning)", c)
	}
}
