package provider

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// cachePointCall is a call with cache points after the system text, after
// a user message's first text and last block (a text, an image, a tool
// result in turn), and after the first tool. Without the cache points it
// is plainCall.
func cachePointCall(t *testing.T, withPoints bool) *Call {
	cp := func() []bus.ContentBlock {
		if withPoints {
			return []bus.ContentBlock{{CachePoint: &bus.CachePoint{Type: bus.CachePointDefault}}}
		}
		return nil
	}
	cat := func(parts ...[]bus.ContentBlock) []bus.ContentBlock {
		var out []bus.ContentBlock
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	img := tinyImage(t, bus.ImagePNG)
	tools := []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "zoom", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}}}
	if withPoints {
		tools = append(tools, bus.Tool{CachePoint: &bus.CachePoint{Type: bus.CachePointDefault}})
	}
	tools = append(tools, bus.Tool{ToolSpec: &bus.ToolSpec{Name: "pan", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}})
	return &Call{
		Model: "m", MaxTokens: 10,
		System: cat([]bus.ContentBlock{{Text: "long rules"}}, cp(), []bus.ContentBlock{{Text: "more"}}),
		Tools:  &bus.ToolConfig{Tools: tools},
		Messages: []bus.Message{
			{Role: "user", Content: cat([]bus.ContentBlock{{Text: "document"}}, cp(), []bus.ContentBlock{{Text: "question"}}, cp())},
			{Role: "assistant", Content: cat([]bus.ContentBlock{{Text: "answer"}}, cp())},
			{Role: "user", Content: cat([]bus.ContentBlock{{Image: img}}, cp(), []bus.ContentBlock{{Text: "this?"}})},
			{Role: "assistant", Content: []bus.ContentBlock{{ToolUse: &bus.ToolUseBlock{ToolUseID: "t1", Name: "zoom", Input: json.RawMessage(`{}`)}}}},
			{Role: "user", Content: cat([]bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "t1", Content: []bus.ToolResultContent{{Text: "zoomed"}}}}}, cp(), []bus.ContentBlock{{Text: "and?"}})},
		},
	}
}

// TestBedrockCachePoints: Bedrock gets each cache point where the call
// has it, in the system blocks, the messages and the tools.
func TestBedrockCachePoints(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"ok"}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 1}})
	defer fake.Close()
	call := cachePointCall(t, true)
	if _, _, err := streamAll(t, bedrockOn(fake), call); err != nil {
		t.Fatal(err)
	}
	body := sentBody(t, fake)
	cp := `{"cachePoint":{"type":"default"}}`
	equalJSON(t, "system", body["system"], `[{"text":"long rules"},`+cp+`,{"text":"more"}]`)
	msgs := body["messages"].([]any)
	content := func(i int) any { return msgs[i].(map[string]any)["content"] }
	equalJSON(t, "messages[0]", content(0), `[{"text":"document"},`+cp+`,{"text":"question"},`+cp+`]`)
	equalJSON(t, "messages[1]", content(1), `[{"text":"answer"},`+cp+`]`)
	if c := content(2).([]any); len(c) != 3 || c[0].(map[string]any)["image"] == nil {
		t.Errorf("messages[2] %v", c)
	} else {
		equalJSON(t, "messages[2] cache point", c[1], cp)
	}
	equalJSON(t, "messages[4]", content(4), `[{"toolResult":{"toolUseId":"t1","content":[{"text":"zoomed"}]}},`+cp+`,{"text":"and?"}]`)
	tools := body["toolConfig"].(map[string]any)["tools"].([]any)
	if len(tools) != 3 || tools[0].(map[string]any)["toolSpec"] == nil || tools[2].(map[string]any)["toolSpec"] == nil {
		t.Fatalf("tools %v", tools)
	}
	equalJSON(t, "toolConfig.tools[1]", tools[1], cp)
}

// TestBedrockCacheTTL: a cache point's TTL reaches Bedrock, and the
// cache writes Bedrock reports for an hour (cacheDetails) are counted
// apart, within the writes.
func TestBedrockCacheTTL(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"ok"}, Usage: &providertest.Usage{
		InputTokens: 5, OutputTokens: 1, CacheWriteInputTokens: 900, CacheWrite1hInputTokens: 600}})
	defer fake.Close()
	call := &Call{Model: "m", MaxTokens: 10,
		System:   []bus.ContentBlock{{Text: "rules"}, {CachePoint: &bus.CachePoint{Type: bus.CachePointDefault, TTL: bus.CacheTTL1h}}},
		Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "doc"}, {CachePoint: &bus.CachePoint{Type: bus.CachePointDefault, TTL: bus.CacheTTL5m}}, {Text: "q"}}}},
	}
	_, res, err := streamAll(t, bedrockOn(fake), call)
	if err != nil {
		t.Fatal(err)
	}
	body := sentBody(t, fake)
	equalJSON(t, "system", body["system"], `[{"text":"rules"},{"cachePoint":{"type":"default","ttl":"1h"}}]`)
	equalJSON(t, "messages[0]", body["messages"].([]any)[0].(map[string]any)["content"], `[{"text":"doc"},{"cachePoint":{"type":"default","ttl":"5m"}},{"text":"q"}]`)
	if res.CacheWriteInputTokens != 900 || res.CacheWrite1hInputTokens != 600 || res.Usage.InputTokens != 905 {
		t.Fatalf("result %+v, want 900 cache writes of which 600 for an hour, 905 input tokens", res)
	}
}

// TestOpenAICachePoints: OpenAI-compatible servers get no cache point, and
// the body is the one of the call without them: no empty text, no extra
// newline, no empty system message.
func TestOpenAICachePoints(t *testing.T) {
	t.Parallel()
	with, err := (&OpenAI{}).body(cachePointCall(t, true))
	if err != nil {
		t.Fatal(err)
	}
	without, err := (&OpenAI{}).body(cachePointCall(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if string(with) != string(without) {
		t.Fatalf("body with cache points\n %s\ndiffers from the one without\n %s", with, without)
	}
	var b struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(with, &b); err != nil {
		t.Fatal(err)
	}
	// System texts each a message; the first user message's texts joined.
	if len(b.Messages) < 3 || b.Messages[0]["content"] != "long rules" || b.Messages[1]["content"] != "more" ||
		b.Messages[2]["content"] != "document\nquestion" {
		t.Fatalf("messages %v", b.Messages)
	}
	// The image message's parts hold no empty text.
	parts, _ := b.Messages[4]["content"].([]any)
	if len(parts) != 2 {
		t.Fatalf("image message parts %v", parts)
	}
}
