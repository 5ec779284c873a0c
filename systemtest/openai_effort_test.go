package systemtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIReasoningEffort sets the SDK's reasoning_effort: the
// OpenAI-compatible upstream receives it as sent, a model whose catalog
// entry maps the effort gets the mapped fields instead, and an effort
// Gatehouse does not know is a 400 naming reasoning_effort.
func TestOpenAIReasoningEffort(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"thought"}, Usage: &providertest.Usage{InputTokens: 3, OutputTokens: 1}}, func(c *config.Config) {
		c.Chat.Models = append(c.Chat.Models, config.ChatModel{
			ID: "gpt-mapped", Provider: "fake-openai", UpstreamModel: "gpt-4o-mini", MaxTokens: 4096, DefaultMaxTokens: 256,
			RequestFields:   map[string]any{"top_k": 20},
			ReasoningEffort: map[string]any{"xhigh": map[string]any{"reasoning_effort": "high", "top_k": 40}},
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tc := range []struct {
		model  string
		effort shared.ReasoningEffort
		want   map[string]any // fields of the upstream body
	}{
		{"gpt", shared.ReasoningEffortHigh, map[string]any{"reasoning_effort": "high"}},
		{"gpt", shared.ReasoningEffortMax, map[string]any{"reasoning_effort": "max"}},
		{"gpt-mapped", shared.ReasoningEffortXhigh, map[string]any{"reasoning_effort": "high", "top_k": float64(40)}},
	} {
		params := userParams(tc.model, "think "+string(tc.effort))
		params.ReasoningEffort = tc.effort
		resp, err := s.client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.model, tc.effort, err)
		}
		if resp.Choices[0].Message.Content != "thought" {
			t.Fatalf("%s %s: answer %+v", tc.model, tc.effort, resp.Choices)
		}
		reqs := s.fake.Requests()
		body := reqs[len(reqs)-1].Body
		for k, want := range tc.want {
			if body[k] != want {
				t.Errorf("%s %s: upstream %s = %v, want %v", tc.model, tc.effort, k, body[k], want)
			}
		}
	}

	params := userParams("gpt", "think the most")
	params.ReasoningEffort = shared.ReasoningEffort("extreme")
	var apiErr *openai.Error
	if _, err := s.client.Chat.Completions.New(ctx, params); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "reasoning_effort" {
		t.Fatalf("reasoning_effort extreme: %v", err)
	}
}
