package chat_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// weatherTools offers one tool, get_weather.
func weatherTools() *bus.ToolConfig {
	return &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{
		Name:        "get_weather",
		Description: "Current weather of a city",
		InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
	}}}}
}

// toolTurn is a conversation in which the assistant called get_weather
// (id call-1) and the user returns its result.
func toolTurn(result bus.ToolResultBlock) []bus.Message {
	return []bus.Message{
		{Role: "user", Content: []bus.ContentBlock{{Text: "weather in Paris?"}}},
		{Role: "assistant", Content: []bus.ContentBlock{
			{Text: "Let me look."},
			{ToolUse: &bus.ToolUseBlock{ToolUseID: "call-1", Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)}},
		}},
		{Role: "user", Content: []bus.ContentBlock{{ToolResult: &result}}},
	}
}

func TestToolValidationErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{MaxInputBytes: 2000}, contractOpts{})
	okResult := bus.ToolResultBlock{ToolUseID: "call-1", Content: []bus.ToolResultContent{{Text: "18 C, sunny"}}}
	withTools := func(mod func(*bus.ToolConfig)) func(*bus.ChatRequest) {
		return func(r *bus.ChatRequest) {
			r.ToolConfig = weatherTools()
			mod(r.ToolConfig)
		}
	}
	conv := func(mod func([]bus.Message)) func(*bus.ChatRequest) {
		return func(r *bus.ChatRequest) {
			r.ToolConfig = weatherTools()
			r.Messages = toolTurn(okResult)
			mod(r.Messages)
		}
	}
	use := func(ms []bus.Message) *bus.ToolUseBlock { return ms[1].Content[1].ToolUse }
	res := func(ms []bus.Message) *bus.ToolResultBlock { return ms[2].Content[0].ToolResult }
	cases := []struct {
		name string
		mod  func(*bus.ChatRequest)
		want string
	}{
		{"no tools", withTools(func(tc *bus.ToolConfig) { tc.Tools = nil }), "toolConfig.tools is empty"},
		{"too many tools", withTools(func(tc *bus.ToolConfig) {
			for range chat.MaxTools {
				tc.Tools = append(tc.Tools, tc.Tools[0])
			}
		}), "toolConfig.tools has 129 tools, more than the limit of 128"},
		{"no spec", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec = nil }), "toolConfig.tools[0].toolSpec is missing"},
		{"bad name", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec.Name = "get weather" }), `toolConfig.tools[0].toolSpec.name "get weather" is not a valid tool name`},
		{"long name", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec.Name = strings.Repeat("a", 65) }), "is not a valid tool name: use 1 to 64"},
		{"duplicate name", withTools(func(tc *bus.ToolConfig) {
			tc.Tools = append(tc.Tools, bus.Tool{ToolSpec: &bus.ToolSpec{Name: "get_weather", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{}`)}}})
		}), `toolConfig.tools[1].toolSpec.name "get_weather" is offered twice`},
		{"schema not object", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec.InputSchema.JSON = json.RawMessage(`[1]`) }), "toolConfig.tools[0].toolSpec.inputSchema.json must be a JSON Schema object"},
		{"schema missing", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec.InputSchema.JSON = nil }), "inputSchema.json must be a JSON Schema object"},
		{"two choices", withTools(func(tc *bus.ToolConfig) { tc.ToolChoice = &bus.ToolChoice{Auto: &struct{}{}, Any: &struct{}{}} }), "toolConfig.toolChoice must set exactly one of auto, any, tool and none; it sets 2"},
		{"no choice", withTools(func(tc *bus.ToolConfig) { tc.ToolChoice = &bus.ToolChoice{} }), "it sets 0"},
		{"unknown choice", withTools(func(tc *bus.ToolConfig) { tc.ToolChoice = &bus.ToolChoice{Tool: &bus.SpecificTool{Name: "get_time"}} }), `toolConfig.toolChoice.tool.name "get_time" is not one of toolConfig.tools`},
		{"schemas too big", withTools(func(tc *bus.ToolConfig) { tc.Tools[0].ToolSpec.Description = strings.Repeat("d", 2000) }), "tool specifications) is 2"},
		{"blocks without tools", func(r *bus.ChatRequest) { r.Messages = toolTurn(okResult) }, "toolConfig is missing: send the tools again"},
		{"tool use from user", conv(func(ms []bus.Message) { ms[0].Content = append(ms[0].Content, ms[1].Content[1]) }), `messages[0].content[1].toolUse is in a "user" message`},
		{"result from assistant", conv(func(ms []bus.Message) { ms[1].Content = append(ms[1].Content, ms[2].Content[0]) }), `messages[1].content[2].toolResult is in a "assistant" message`},
		{"two kinds", conv(func(ms []bus.Message) { ms[1].Content[1].Text = "x" }), "messages[1].content[1] sets more than one of text, image, toolUse, toolResult and reasoningContent"},
		{"no use id", conv(func(ms []bus.Message) { use(ms).ToolUseID = "" }), "messages[1].content[1].toolUse.toolUseId must be 1 to 128 bytes"},
		{"use id space", conv(func(ms []bus.Message) { use(ms).ToolUseID = "call 1" }), "toolUseId holds a space"},
		{"use bad name", conv(func(ms []bus.Message) { use(ms).Name = "a.b" }), `messages[1].content[1].toolUse.name "a.b" is not a valid tool name`},
		{"use input not object", conv(func(ms []bus.Message) { use(ms).Input = json.RawMessage(`"Paris"`) }), "messages[1].content[1].toolUse.input must be a JSON object"},
		{"use input missing", conv(func(ms []bus.Message) { use(ms).Input = nil }), "toolUse.input must be a JSON object"},
		{"result status", conv(func(ms []bus.Message) { res(ms).Status = "failed" }), `messages[2].content[0].toolResult.status is "failed"`},
		{"result empty", conv(func(ms []bus.Message) { res(ms).Content = nil }), "messages[2].content[0].toolResult.content is empty"},
		{"result piece empty", conv(func(ms []bus.Message) { res(ms).Content = []bus.ToolResultContent{{}} }), "toolResult.content[0] is empty: set text or json"},
		{"result both", conv(func(ms []bus.Message) {
			res(ms).Content = []bus.ToolResultContent{{Text: "a", JSON: json.RawMessage(`{}`)}}
		}), "toolResult.content[0] sets both text and json"},
		{"result unknown id", conv(func(ms []bus.Message) { res(ms).ToolUseID = "call-9" }), `messages[2].content[0].toolResult.toolUseId "call-9" answers no toolUse of messages[1]`},
		{"result first", conv(func(ms []bus.Message) { ms[0].Content = append(ms[0].Content, ms[2].Content[0]) }), `messages[0].content[1].toolResult.toolUseId "call-1" answers no toolUse: a toolResult must follow an assistant message that calls tools`},
		{"result twice", conv(func(ms []bus.Message) { ms[2].Content = append(ms[2].Content, ms[2].Content[0]) }), `toolUseId "call-1" is answered twice`},
		{"use unanswered", conv(func(ms []bus.Message) { ms[2].Content[0] = bus.ContentBlock{Text: "never mind"} }), `messages[2] must hold a toolResult for toolUseId "call-1" of messages[1]`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h.refused(t, user("tv"+strings.Repeat("x", i)), "toolval-"+strings.ReplaceAll(tc.name, " ", "-"), request("x", tc.mod), tc.want)
		})
	}
	t.Cleanup(func() {
		if reserves, _, _ := h.c.snapshot(); len(reserves) != 0 {
			t.Errorf("invalid requests reached meter: %+v", reserves)
		}
	})
}

// TestToolResultConversation sends a conversation that ends with a tool
// result through echo: it is valid, echo answers with the result, the
// tools and tool blocks count as input, and the answer is cached under a
// key that differs from the same text without tools.
func TestToolResultConversation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	bob := user("bob")
	sub := h.listen(h.subj.Outbound(bob.ChannelID))
	result := bus.ToolResultBlock{ToolUseID: "call-1", Content: []bus.ToolResultContent{{Text: "18 C, sunny"}, {JSON: json.RawMessage(`{"wind":"3 km/h"}`)}}}
	body := request("", func(r *bus.ChatRequest) {
		r.ToolConfig = weatherTools()
		r.ToolConfig.ToolChoice = &bus.ToolChoice{Auto: &struct{}{}}
		r.Messages = toolTurn(result)
	})
	h.publish(bob, "tool-1", body, nil)
	evs := answer(t, sub)
	md := checkAnswer(t, evs, "tool-1", "conv-1", `18 C, sunny
{"wind":"3 km/h"}`, "end_turn")
	// echo counts words: "weather in Paris?" 3, "Let me look." 3, the
	// input {"city":"Paris"} 1, the result 3 + 2 ({"wind":"3 and km/h"}).
	if got := md.Metadata.Usage.InputTokens; got != 12 {
		t.Fatalf("input tokens %d, want 12", got)
	}
	var req bus.ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cache put", func() bool { _, _, p := h.c.snapshot(); return len(p) == 1 })
	_, _, puts := h.c.snapshot()
	key := bus.CacheKey("user:"+bob.Subject(), "echo", req)
	if puts[0].Key != key {
		t.Fatalf("cache key %s, want %s", puts[0].Key, key)
	}
	plain := req
	plain.ToolConfig = nil
	other := req
	other.Messages = toolTurn(bus.ToolResultBlock{ToolUseID: "call-1", Content: []bus.ToolResultContent{{Text: "19 C, sunny"}}})
	if bus.CacheKey("user:"+bob.Subject(), "echo", plain) == key || bus.CacheKey("user:"+bob.Subject(), "echo", other) == key {
		t.Fatal("the cache key ignores the tools or the tool result")
	}
}

// TestToolCallEvents runs a model answer that calls two tools through chat
// on each fake upstream: the events are messageStart, the text delta,
// contentBlockStart and toolUse input deltas per call, a contentBlockStop
// per block in order, messageStop tool_use and the metadata; the usage
// record is written and the answer is not stored in the cache.
func TestToolCallEvents(t *testing.T) {
	t.Parallel()
	reply := providertest.Reply{
		Chunks: []string{"Checking."},
		ToolCalls: []providertest.ToolCall{
			{ID: "call-a", Name: "get_weather", InputChunks: []string{`{"city":`, `"Paris"}`}},
			{ID: "call-b", Name: "get_weather", InputChunks: []string{`{"city":"Rome"}`}},
		},
		Usage: &providertest.Usage{InputTokens: 20, OutputTokens: 15},
	}
	bedrock := providertest.NewBedrock(reply)
	t.Cleanup(bedrock.Close)
	oai := providertest.NewOpenAI(reply)
	t.Cleanup(oai.Close)
	for _, tc := range []struct {
		name  string
		cfg   chat.Config
		model string
	}{
		{"bedrock", bedrockConfig(bedrock), "claude"},
		{"openai", openAIConfig(oai), "gpt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.cfg, contractOpts{})
			gil := user("gil-" + tc.name)
			sub := h.listen(h.subj.Outbound(gil.ChannelID))
			reqID := "tools-" + tc.name
			h.publish(gil, reqID, modelRequest(tc.model, "weather in Paris and Rome?", func(r *bus.ChatRequest) { r.ToolConfig = weatherTools() }), nil)
			evs := answer(t, sub)
			var got []string
			for _, ev := range evs {
				switch {
				case ev.MessageStart != nil:
					got = append(got, "start")
				case ev.ContentBlockStart != nil:
					u := ev.ContentBlockStart.Start.ToolUse
					got = append(got, fmt.Sprintf("block %d %s %s", ev.ContentBlockStart.ContentBlockIndex, u.ToolUseID, u.Name))
				case ev.ContentBlockDelta != nil && ev.ContentBlockDelta.Delta.ToolUse != nil:
					got = append(got, fmt.Sprintf("input %d %s", ev.ContentBlockDelta.ContentBlockIndex, ev.ContentBlockDelta.Delta.ToolUse.Input))
				case ev.ContentBlockDelta != nil:
					got = append(got, fmt.Sprintf("text %d %s", ev.ContentBlockDelta.ContentBlockIndex, ev.ContentBlockDelta.Delta.Text))
				case ev.ContentBlockStop != nil:
					got = append(got, fmt.Sprintf("stop %d", ev.ContentBlockStop.ContentBlockIndex))
				case ev.MessageStop != nil:
					got = append(got, "messageStop "+ev.MessageStop.StopReason)
				case ev.Metadata != nil:
					got = append(got, fmt.Sprintf("usage %d/%d", ev.Metadata.Usage.InputTokens, ev.Metadata.Usage.OutputTokens))
				case ev.Error != nil:
					t.Fatalf("error event %+v", ev.Error)
				}
			}
			want := []string{"start", "text 0 Checking.",
				`block 1 call-a get_weather`, `input 1 {"city":`, `input 1 "Paris"}`,
				`block 2 call-b get_weather`, `input 2 {"city":"Rome"}`,
				"stop 0", "stop 1", "stop 2", "messageStop tool_use", "usage 20/15"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if rec, _ := h.usageRecord("acme", reqID); rec.Status != bus.UsageStatusOK || rec.OutputTokens != 15 {
				t.Fatalf("usage record %+v", rec)
			}
			if _, _, puts := h.c.snapshot(); len(puts) != 0 {
				t.Fatalf("an answer that calls tools was cached: %+v", puts)
			}
		})
	}
}
