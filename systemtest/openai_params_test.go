package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIParams sets the SDK's logit_bias, verbosity, user,
// safety_identifier, prompt_cache_key and service_tier: the
// OpenAI-compatible upstream receives each as sent. store and metadata,
// set too, never reach it. A verbosity Gatehouse does not know is a 400
// naming verbosity, and a bad logit_bias entry one naming the entry.
func TestOpenAIParams(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"short"}, Usage: &providertest.Usage{InputTokens: 3, OutputTokens: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	params := userParams("gpt", "be short")
	params.LogitBias = map[string]int64{"50256": -100, "1734": 5}
	params.Verbosity = openai.ChatCompletionNewParamsVerbosityLow
	params.User = openai.String("end-user-7")
	params.SafetyIdentifier = openai.String("h4sh-7")
	params.PromptCacheKey = openai.String("prefix-7")
	params.ServiceTier = openai.ChatCompletionNewParamsServiceTierFlex
	params.Store = openai.Bool(true)
	params.Metadata = shared.Metadata{"team": "alpha"}
	resp, err := s.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "short" {
		t.Fatalf("answer %+v", resp.Choices)
	}
	reqs := s.fake.Requests()
	body := reqs[len(reqs)-1].Body
	got, _ := json.Marshal(map[string]any{
		"logit_bias": body["logit_bias"], "verbosity": body["verbosity"], "user": body["user"],
		"safety_identifier": body["safety_identifier"], "prompt_cache_key": body["prompt_cache_key"], "service_tier": body["service_tier"],
	})
	const want = `{"logit_bias":{"1734":5,"50256":-100},"prompt_cache_key":"prefix-7","safety_identifier":"h4sh-7","service_tier":"flex","user":"end-user-7","verbosity":"low"}`
	if string(got) != want {
		t.Fatalf("upstream got %s, want %s", got, want)
	}
	for _, k := range []string{"store", "metadata"} {
		if v, ok := body[k]; ok {
			t.Errorf("upstream got %s: %v", k, v)
		}
	}

	for _, tc := range []struct {
		param string
		mod   func(*openai.ChatCompletionNewParams)
	}{
		{"verbosity", func(p *openai.ChatCompletionNewParams) { p.Verbosity = "terse" }},
		{`logit_bias["x"]`, func(p *openai.ChatCompletionNewParams) { p.LogitBias = map[string]int64{"x": 1} }},
		{`logit_bias["7"]`, func(p *openai.ChatCompletionNewParams) { p.LogitBias = map[string]int64{"7": 101} }},
	} {
		params := userParams("gpt", "bad "+tc.param)
		tc.mod(&params)
		var apiErr *openai.Error
		if _, err := s.client.Chat.Completions.New(ctx, params); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != tc.param {
			t.Errorf("%s: %v, want a 400 naming it", tc.param, err)
		}
	}
	if n := len(s.fake.Requests()); n != len(reqs) {
		t.Fatalf("refused requests reached the upstream %d times", n-len(reqs))
	}
}
