package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestBedrockThinkingWithTools runs Claude's extended thinking with a tool
// through the SDK, against the fake Bedrock, which, like Claude, refuses a
// tool result whose assistant turn does not start with its signed
// reasoning. The first answer streams its reasoning and, once the
// reasoning block ends, the block whole in delta.thinking_blocks (an extra
// field to the SDK); the client sends it back in the assistant message
// with the tool call, and the second turn is answered. Sent back without
// it, the upstream's refusal is a 400. It sets environment variables, so
// it does not run in parallel.
func TestBedrockThinkingWithTools(t *testing.T) {
	fakeAWSEnvironment(t)
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"Sunny in Oslo."}, Usage: &providertest.Usage{InputTokens: 80, OutputTokens: 5}})
	client, _ := startBedrockStack(t, fake, "thinking-user", config.ChatModel{
		ID: "claude-thinking", Provider: "bedrock", UpstreamModel: "anthropic.claude-sonnet", MaxTokens: 8000, DefaultMaxTokens: 4000,
		RequestFields: map[string]any{"thinking": map[string]any{"type": "enabled", "budget_tokens": 1024}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	fake.Push(providertest.Reply{
		Reasoning: []string{"The user wants ", "the weather."},
		ToolCalls: []providertest.ToolCall{{ID: "tooluse_1", Name: "get_weather", InputChunks: []string{`{"city":"Oslo"}`}}},
		Usage:     &providertest.Usage{InputTokens: 50, OutputTokens: 30},
	})
	params := userParams("claude-thinking", "weather in Oslo?")
	params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool()}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	var blocks []json.RawMessage
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		if len(c.Choices) == 0 {
			continue
		}
		if f, ok := c.Choices[0].Delta.JSON.ExtraFields["thinking_blocks"]; ok && f.Raw() != "" {
			var bs []json.RawMessage
			if err := json.Unmarshal([]byte(f.Raw()), &bs); err != nil {
				t.Fatalf("thinking_blocks %s: %v", f.Raw(), err)
			}
			blocks = append(blocks, bs...)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	msg := acc.Choices[0].Message
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Arguments != `{"city":"Oslo"}` {
		t.Fatalf("tool calls %+v", msg.ToolCalls)
	}
	wantBlock := `{"type":"thinking","thinking":"The user wants the weather.","signature":"` + providertest.ReasoningSignature("The user wants the weather.") + `"}`
	if len(blocks) != 1 || string(blocks[0]) != wantBlock {
		t.Fatalf("thinking blocks %s, want [%s]", blocks, wantBlock)
	}

	second := func(sendBack bool) openai.ChatCompletionNewParams {
		asst := msg.ToAssistantMessageParam()
		if sendBack {
			asst.SetExtraFields(map[string]any{"thinking_blocks": blocks})
		}
		p := userParams("claude-thinking", "weather in Oslo?")
		p.Tools = params.Tools
		p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &asst}, openai.ToolMessage("18 C, sunny", msg.ToolCalls[0].ID))
		return p
	}
	resp, err := client.Chat.Completions.New(ctx, second(true))
	if err != nil {
		t.Fatalf("second turn with the thinking blocks sent back: %v", err)
	}
	if resp.Choices[0].Message.Content != "Sunny in Oslo." {
		t.Fatalf("second turn answered %q", resp.Choices[0].Message.Content)
	}
	reqs := fake.Requests()
	sent, _ := json.Marshal(reqs[len(reqs)-1].Body["messages"])
	if !strings.Contains(string(sent), `{"reasoningContent":{"reasoningText":{"signature":"`+providertest.ReasoningSignature("The user wants the weather.")+`","text":"The user wants the weather."}}}`) {
		t.Fatalf("Bedrock was sent %s", sent)
	}

	_, err = client.Chat.Completions.New(ctx, second(false))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "Expected `thinking`") {
		t.Fatalf("second turn without the thinking blocks: %v, want a 400 with the upstream's refusal", err)
	}
}
