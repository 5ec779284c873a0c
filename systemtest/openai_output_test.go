package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIStructuredOutput asks for JSON through the SDK's
// response_format: json_schema and json_object reach the OpenAI-compatible
// upstream as sent, the JSON answer comes back, and a model that cannot
// produce the format (echo) is a 400 naming it.
func TestOpenAIStructuredOutput(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{`{"name":"Ada",`, `"age":36}`}, Usage: &providertest.Usage{InputTokens: 7, OutputTokens: 9}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schema := map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"name": map[string]any{"type": "string"}, "age": map[string]any{"type": "integer"}},
		"required":             []string{"name", "age"},
		"additionalProperties": false,
	}
	params := userParams("gpt", "who wrote the first program?")
	params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "person", Strict: openai.Bool(true), Schema: schema},
	}}
	resp, err := s.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	var person struct {
		Name string
		Age  int
	}
	if err := json.Unmarshal([]byte(resp.Choices[0].Message.Content), &person); err != nil || person.Name != "Ada" || person.Age != 36 {
		t.Fatalf("answer %q: %v", resp.Choices[0].Message.Content, err)
	}
	reqs := s.fake.Requests()
	got, _ := json.Marshal(reqs[len(reqs)-1].Body["response_format"])
	want, _ := json.Marshal(map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "person", "strict": true, "schema": schema}})
	if string(got) != string(want) {
		t.Fatalf("upstream response_format\n got %s\nwant %s", got, want)
	}

	params = userParams("gpt", "one person as JSON")
	params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
	if _, err := s.client.Chat.Completions.New(ctx, params); err != nil {
		t.Fatal(err)
	}
	reqs = s.fake.Requests()
	if got, _ := json.Marshal(reqs[len(reqs)-1].Body["response_format"]); string(got) != `{"type":"json_object"}` {
		t.Fatalf("upstream response_format %s", got)
	}

	params.Model = "echo"
	var apiErr *openai.Error
	if _, err := s.client.Chat.Completions.New(ctx, params); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != bus.ErrTypeValidation {
		t.Fatalf("echo with json_object: %v", err)
	}
}
