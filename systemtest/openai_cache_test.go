package systemtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestPromptCacheThroughTheAPI sends, with the official SDK, a system
// message and a user message whose content parts carry Anthropic's
// cache_control, and a tool with one, to a Bedrock model on a fake
// ConverseStream endpoint: Bedrock gets cachePoint blocks right after
// those parts and that tool (with the ttl one part asks for), and the
// ledger row counts the cache reads and writes the fake reports as input
// tokens, priced at the configured cached, cache write and 1-hour cache
// write prices. It sets environment variables, so it
// does not run in parallel.
func TestPromptCacheThroughTheAPI(t *testing.T) {
	fakeAWSEnvironment(t)
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"cached", " answer"},
		Usage:  &providertest.Usage{InputTokens: 12, OutputTokens: 5, CacheReadInputTokens: 2000, CacheWriteInputTokens: 1000, CacheWrite1hInputTokens: 400},
	})
	client, dbURL := startBedrockStack(t, fake, "cache-user", config.ChatModel{ID: "claude", Provider: "bedrock", UpstreamModel: "anthropic.claude-cache", MaxTokens: 1000,
		Price: config.ChatPrice{Input: 3, Output: 15, CachedInput: 0.3, CacheWriteInput: 3.75, CacheWrite1hInput: 6}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ephemeral := map[string]any{"cache_control": map[string]any{"type": "ephemeral"}}
	rules := openai.ChatCompletionContentPartTextParam{Text: "long rules"}
	rules.SetExtraFields(ephemeral)
	doc := openai.ChatCompletionContentPartTextParam{Text: "long document"}
	doc.SetExtraFields(map[string]any{"cache_control": map[string]any{"type": "ephemeral", "ttl": "1h"}})
	tool := weatherTool()
	tool.OfFunction.SetExtraFields(ephemeral)
	params := openai.ChatCompletionNewParams{
		Model: "claude",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage([]openai.ChatCompletionContentPartTextParam{rules, {Text: "be brief"}}),
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{{OfText: &doc}, openai.TextContentPart("question?")}),
		},
		Tools: []openai.ChatCompletionToolUnionParam{tool},
	}
	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "cached answer" || resp.Usage.PromptTokens != 3012 || resp.Usage.CompletionTokens != 5 || resp.Usage.TotalTokens != 3017 {
		t.Fatalf("answer %q usage %+v", resp.Choices[0].Message.Content, resp.Usage)
	}

	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	const point = `{"cachePoint":{"type":"default"}}`
	for field, want := range map[string]string{
		"system":   `[{"text":"long rules"},` + point + `,{"text":"be brief"}]`,
		"messages": `[{"content":[{"text":"long document"},{"cachePoint":{"ttl":"1h","type":"default"}},{"text":"question?"}],"role":"user"}]`,
	} {
		if got, _ := json.Marshal(reqs[0].Body[field]); string(got) != want {
			t.Errorf("upstream %s\n got %s\nwant %s", field, got, want)
		}
	}
	tools, _ := json.Marshal(reqs[0].Body["toolConfig"].(map[string]any)["tools"])
	if !strings.HasPrefix(string(tools), `[{"toolSpec":{`) || !strings.HasSuffix(string(tools), `}},`+point+`]`) || strings.Count(string(tools), "toolSpec") != 1 {
		t.Errorf("upstream tools %s: want the tool, then a cache point", tools)
	}

	// 12 uncached input tokens at $3/M, 2,000 read from the cache at
	// $0.30/M, 600 written to it for 5 minutes at $3.75/M and 400 for an
	// hour at $6/M, 5 output at $15/M.
	rows := waitLedgerRows(t, "pgx", dbURL, strings.TrimPrefix(resp.ID, "chatcmpl-"))
	if want := int64(12*3 + 2000*0.3 + 600*3.75 + 400*6 + 5*15); len(rows) != 1 || rows[0].Status != bus.UsageStatusOK || rows[0].InputTokens != 3012 ||
		rows[0].OutputTokens != 5 || rows[0].TotalTokens != 3017 || rows[0].CostMicroUSD != want {
		t.Fatalf("ledger %+v, want 3012 input tokens costing %d", rows, want)
	}
}
