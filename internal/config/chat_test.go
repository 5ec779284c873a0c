package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const chatYAML = `
chat:
  retry_attempts: 3
  retry_backoff: 50ms
  first_token_timeout: 20s
  providers:
    - name: aws
      type: bedrock
      region: eu-west-1
      max_concurrent: 16
    - name: local
      type: openai
      base_url: http://127.0.0.1:11434/v1
      api_key: sk-x
  models:
    - id: claude
      aliases: [sonnet]
      provider: aws
      upstream_model: anthropic.claude-3-5-sonnet-20240620-v1:0
      default_max_tokens: 1024
      max_tokens: 8192
      context_window: 200000
      price: {input_per_million: 3, output_per_million: 15, cached_input_per_million: 0.3, cache_write_input_per_million: 3.75, cache_write_1h_input_per_million: 6}
      guardrail: {id: gr-1, version: "1", trace: enabled}
      fallbacks: [llama]
    - id: llama
      provider: local
      max_tokens: 4096
`

func TestChatCatalogFromYAML(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(path, []byte(chatYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := cfg.Chat
	if c.RetryAttempts != 3 || c.RetryBackoff != 50*time.Millisecond || c.FirstTokenTimeout != 20*time.Second || c.Concurrency != 32 {
		t.Fatalf("chat %+v", c)
	}
	if len(c.Providers) != 2 || c.Providers[0].Region != "eu-west-1" || c.Providers[0].MaxConcurrent != 16 || c.Providers[1].APIKey != "sk-x" {
		t.Fatalf("providers %+v", c.Providers)
	}
	m := c.Models[0]
	if m.UpstreamModel != "anthropic.claude-3-5-sonnet-20240620-v1:0" || m.Price.CachedInput != 0.3 || m.Price.CacheWriteInput != 3.75 || m.Price.CacheWrite1hInput != 6 || m.Guardrail.Version != "1" || m.Fallbacks[0] != "llama" || m.ContextWindow != 200000 {
		t.Fatalf("model %+v", m)
	}
}

func TestChatValidateNamesField(t *testing.T) {
	t.Parallel()
	cases := map[string]Chat{
		"chat.providers[0].type":           {Concurrency: 1, Providers: []ChatProvider{{Name: "x", Type: "gcp"}}},
		"chat.providers[0].base_url":       {Concurrency: 1, Providers: []ChatProvider{{Name: "x", Type: "openai"}}},
		"chat.providers[0].name":           {Concurrency: 1, Providers: []ChatProvider{{Type: "openai"}}},
		"chat.providers[0].max_concurrent": {Concurrency: 1, Providers: []ChatProvider{{Name: "x", Type: "bedrock", MaxConcurrent: -1}}},
		"chat.models[0].id":                {Concurrency: 1, Models: []ChatModel{{Provider: "echo", MaxTokens: 1}}},
		"chat.models[0].provider":          {Concurrency: 1, Models: []ChatModel{{ID: "m", MaxTokens: 1}}},
		"chat.models[0].max_tokens":        {Concurrency: 1, Models: []ChatModel{{ID: "m", Provider: "echo"}}},
		"chat.retry_attempts":              {Concurrency: 1, RetryAttempts: -1},
		"chat.first_token_timeout":         {Concurrency: 1, FirstTokenTimeout: -time.Second},
	}
	for field, c := range cases {
		errs := c.validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), field) {
			t.Errorf("%s: got %v", field, errs)
		}
	}
}

func TestChatAPIKeyMasked(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Chat.Providers = []ChatProvider{{Name: "oa", Type: "openai", BaseURL: "http://x/v1", APIKey: "sk-very-secret"}}
	out, err := c.Masked()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "sk-very-secret") || !strings.Contains(string(out), "api_key: '****'") {
		t.Fatalf("masked config:\n%s", out)
	}
	if c.Chat.Providers[0].APIKey != "sk-very-secret" {
		t.Fatal("masking changed the configuration")
	}
}
