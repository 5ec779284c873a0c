package systemtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestBedrockThroughTheAPI runs the whole system with a Bedrock provider
// on a fake ConverseStream endpoint (the AWS SDK finds its credentials and
// region in the environment, as in production), and checks through the
// OpenAI API and the Postgres ledger: an HTTP 429 before the stream is
// retried and then answered by the fallback model, and a
// throttlingException mid-stream ends the stream with an error while the
// partial usage is recorded. It sets environment variables, so it does
// not run in parallel.
func TestBedrockThroughTheAPI(t *testing.T) {
	fakeAWSEnvironment(t)
	fake := providertest.NewBedrock(providertest.Reply{
		Chunks: []string{"from", " the", " backup"},
		Usage:  &providertest.Usage{InputTokens: 11, OutputTokens: 3},
	})
	client, dbURL := startBedrockStack(t, fake, "bedrock-user",
		config.ChatModel{ID: "claude", Provider: "bedrock", UpstreamModel: "anthropic.claude-primary", MaxTokens: 1000, Fallbacks: []string{"claude-backup"},
			Price: config.ChatPrice{Input: 3, Output: 15}},
		config.ChatModel{ID: "claude-backup", Provider: "bedrock", UpstreamModel: "anthropic.claude-backup", MaxTokens: 1000,
			Price: config.ChatPrice{Input: 1, Output: 5}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// HTTP 429 twice for the primary, then the fallback answers.
	fake.Push(providertest.Reply{Status: 429}, providertest.Reply{Status: 429})
	params := userParams("claude", "hello")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	var id string
	for stream.Next() {
		acc.AddChunk(stream.Current())
		id = stream.Current().ID
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "from the backup" || acc.Usage.PromptTokens != 11 || acc.Usage.CompletionTokens != 3 {
		t.Fatalf("answer %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
	var got []string
	for _, r := range fake.Requests() {
		got = append(got, r.Path)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
			t.Fatalf("request not signed with the environment's credentials: %q", r.Header.Get("Authorization"))
		}
	}
	if strings.Join(got, ",") != "/model/anthropic.claude-primary/converse-stream,/model/anthropic.claude-primary/converse-stream,/model/anthropic.claude-backup/converse-stream" {
		t.Fatalf("upstream calls %v", got)
	}
	rows := waitLedgerRows(t, "pgx", dbURL, strings.TrimPrefix(id, "chatcmpl-"))
	if len(rows) != 1 || rows[0].ModelID != "claude-backup" || rows[0].Status != bus.UsageStatusOK || rows[0].InputTokens != 11 || rows[0].OutputTokens != 3 {
		t.Fatalf("ledger %+v", rows)
	}

	// A throttlingException after two chunks: the stream ends with an
	// error and the partial usage is in the ledger.
	fake.Push(providertest.Reply{Chunks: []string{"partial", " text", " lost"}, Throttle: true, ThrottleAfter: 2})
	stream = client.Chat.Completions.NewStreaming(ctx, userParams("claude", "again"))
	var text strings.Builder
	for stream.Next() {
		c := stream.Current()
		id = c.ID
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if stream.Err() == nil || !strings.Contains(stream.Err().Error(), bus.ErrTypeUpstreamThrottled) || text.String() != "partial text" {
		t.Fatalf("text %q, err %v", text.String(), stream.Err())
	}
	rows = waitLedgerRows(t, "pgx", dbURL, strings.TrimPrefix(id, "chatcmpl-"))
	// "partial text" is 12 bytes: 3 estimated output tokens.
	if len(rows) != 1 || rows[0].ModelID != "claude" || rows[0].Status != bus.UsageStatusError || rows[0].OutputTokens != 3 {
		t.Fatalf("ledger %+v", rows)
	}

	// Tool use: tool_choice "required" is Converse's {"any":{}}; the
	// streamed toolUse block reaches the SDK as a tool call; its result
	// goes back as a toolResult block after the assistant's toolUse.
	fake.Push(providertest.Reply{
		ToolCalls: []providertest.ToolCall{{ID: "tooluse_1", Name: "get_weather", InputChunks: []string{`{"city"`, `:"Oslo"}`}}},
		Usage:     &providertest.Usage{InputTokens: 50, OutputTokens: 20},
	})
	params = userParams("claude", "weather in Oslo?")
	params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool()}
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	stream = client.Chat.Completions.NewStreaming(ctx, params)
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].ID != "tooluse_1" || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"Oslo"}` ||
		acc.Choices[0].FinishReason != "tool_calls" || acc.Choices[0].Message.Content != "" {
		t.Fatalf("tool call %+v finish %q", acc.Choices[0].Message, acc.Choices[0].FinishReason)
	}
	reqs := fake.Requests()
	tcfg, _ := json.Marshal(reqs[len(reqs)-1].Body["toolConfig"])
	if want := `{"toolChoice":{"any":{}},"tools":[{"toolSpec":{"description":"Current weather of a city","inputSchema":{"json":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}},"name":"get_weather"}}]}`; string(tcfg) != want {
		t.Fatalf("upstream toolConfig\n got %s\nwant %s", tcfg, want)
	}
	follow := userParams("claude", "weather in Oslo?")
	follow.Tools = params.Tools
	follow.Messages = append(follow.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage("-3 C, snow", "tooluse_1"))
	resp, err := client.Chat.Completions.New(ctx, follow)
	if err != nil || resp.Choices[0].Message.Content != "from the backup" {
		t.Fatalf("after the tool result: %+v %v", resp, err)
	}
	reqs = fake.Requests()
	msgs, _ := json.Marshal(reqs[len(reqs)-1].Body["messages"])
	if want := `[{"content":[{"text":"weather in Oslo?"}],"role":"user"},{"content":[{"toolUse":{"input":{"city":"Oslo"},"name":"get_weather","toolUseId":"tooluse_1"}}],"role":"assistant"},` +
		`{"content":[{"toolResult":{"content":[{"text":"-3 C, snow"}],"toolUseId":"tooluse_1"}}],"role":"user"}]`; string(msgs) != want {
		t.Fatalf("upstream messages\n got %s\nwant %s", msgs, want)
	}
}

// fakeAWSEnvironment gives the AWS SDK static credentials and a region in
// the environment, as in production, and keeps it from reading the
// machine's files or instance metadata. It sets environment variables, so
// a test that calls it does not run in parallel.
func fakeAWSEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

// startBedrockStack runs `gatehouse dev` with a Postgres ledger, a
// "bedrock" provider on fake (closed when the test ends) and models, and
// returns an SDK client with a token for sub, and the ledger's database
// URL. Retries are 2, 1 ms apart.
func startBedrockStack(t *testing.T, fake *providertest.Bedrock, sub string, models ...config.ChatModel) (openai.Client, string) {
	t.Helper()
	t.Cleanup(fake.Close)
	dbURL := postgresSchema(t)
	cfg := devConfig(t, dbURL)
	cfg.Chat.Providers = []config.ChatProvider{{Name: "bedrock", Type: "bedrock", BaseURL: fake.URL}}
	cfg.Chat.Models = models
	cfg.Chat.RetryAttempts = 2
	cfg.Chat.RetryBackoff = time.Millisecond
	dev := startDev(t, cfg)
	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: sub}))
	client := openai.NewClient(option.WithBaseURL(dev.EdgeURL()+"/v1/"), option.WithHTTPClient(httpClientTrusting(t, dev.CAFile())),
		option.WithMaxRetries(0), option.WithAPIKey(token))
	return client, dbURL
}
