package stack

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat"
)

func TestChatConfigMapping(t *testing.T) {
	t.Parallel()
	// No catalog configured: chat's default (echo) applies.
	if cc := ChatConfig(config.Default().NATS, config.Default().Chat, slog.Default()); cc.Models != nil || cc.Validate() != nil {
		t.Fatalf("default chat config %+v: %v", cc, cc.Validate())
	}

	c := config.Default().Chat
	c.Providers = []config.ChatProvider{{Name: "local", Type: "openai", BaseURL: "http://127.0.0.1:1/v1", ImageURLs: true}}
	c.Models = []config.ChatModel{
		{ID: "gpt", Provider: "local", MaxTokens: 100, Price: config.ChatPrice{Input: 1, Output: 2, CachedInput: 0.1, CacheWriteInput: 1.25, CacheWrite1hInput: 2}, Fallbacks: []string{"echo"},
			Guardrail: &config.ChatGuardrail{ID: "g", Version: "1"}, RequestFields: map[string]any{"top_k": 20, "chat_template_kwargs": map[string]any{"enable_thinking": false}},
			ReasoningEffort: map[string]any{"xhigh": map[string]any{"reasoning_effort": "high"}, "none": map[string]any{"chat_template_kwargs": map[string]any{"enable_thinking": false}}}},
		{ID: "echo", Provider: "echo", MaxTokens: 8192},
	}
	cc := ChatConfig(config.Default().NATS, c, slog.Default())
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	m := cc.Models[0]
	if m.DefaultMaxTokens != 100 || cc.Models[1].DefaultMaxTokens != 1024 || m.Price.OutputPerMillion != 2 || m.Price.CachedInputPerMillion != 0.1 || m.Price.CacheWriteInputPerMillion != 1.25 || m.Price.CacheWrite1hInputPerMillion != 2 || m.Guardrail.ID != "g" || cc.Providers[0].Type != chat.ProviderTypeOpenAI || !cc.Providers[0].ImageURLs ||
		string(m.RequestFields) != `{"chat_template_kwargs":{"enable_thinking":false},"top_k":20}` || cc.Models[1].RequestFields != nil ||
		len(m.ReasoningEffort) != 2 || string(m.ReasoningEffort["xhigh"]) != `{"reasoning_effort":"high"}` ||
		string(m.ReasoningEffort["none"]) != `{"chat_template_kwargs":{"enable_thinking":false}}` || cc.Models[1].ReasoningEffort != nil {
		t.Fatalf("mapped %+v", cc)
	}

	// vision and tools: absent is capable, false sets NoVision and NoTools.
	if m.NoVision || m.NoTools {
		t.Fatalf("flags absent: NoVision %v NoTools %v, want false", m.NoVision, m.NoTools)
	}
	no, yes := false, true
	for _, tc := range []struct {
		vision, tools     *bool
		noVision, noTools bool
	}{{&no, &no, true, true}, {&no, nil, true, false}, {nil, &no, false, true}, {&yes, &yes, false, false}} {
		c.Models[0].Vision, c.Models[0].Tools = tc.vision, tc.tools
		if got := ChatConfig(config.Default().NATS, c, slog.Default()).Models[0]; got.NoVision != tc.noVision || got.NoTools != tc.noTools {
			t.Fatalf("vision %v tools %v: NoVision %v NoTools %v, want %v %v", tc.vision, tc.tools, got.NoVision, got.NoTools, tc.noVision, tc.noTools)
		}
	}
	c.Models[0].Vision, c.Models[0].Tools = nil, nil

	// A mapping may set reasoning_effort, request fields may not; chat's
	// errors name the model and the effort.
	c.Models[0].RequestFields = map[string]any{"reasoning_effort": "low"}
	if err := ChatConfig(config.Default().NATS, c, slog.Default()).Validate(); !errors.Is(err, chat.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), `Models[0].RequestFields sets "reasoning_effort"`) {
		t.Fatalf("reasoning_effort in request fields: %v", err)
	}
	c.Models[0].RequestFields = nil
	c.Models[1].ReasoningEffort = map[string]any{"low": map[string]any{"a": 1}}
	if err := ChatConfig(config.Default().NATS, c, slog.Default()).Validate(); !errors.Is(err, chat.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), `Models[1].ReasoningEffort["low"] is set, but echo takes no request fields`) {
		t.Fatalf("echo mapping: %v", err)
	}
	c.Models[1].ReasoningEffort = nil

	// A request field Gatehouse sets itself is refused.
	c.Models[0].RequestFields = map[string]any{"temperature": 0.2}
	if err := ChatConfig(config.Default().NATS, c, slog.Default()).Validate(); !errors.Is(err, chat.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), `Models[0].RequestFields sets "temperature"`) {
		t.Fatalf("reserved request field: %v", err)
	}
	c.Models[0].RequestFields = nil

	// chat's deeper checks name the field.
	c.Models[0].Fallbacks = []string{"nope"}
	err := ChatConfig(config.Default().NATS, c, slog.Default()).Validate()
	if !errors.Is(err, chat.ErrInvalidConfig) || !strings.Contains(err.Error(), "Models[0].Fallbacks[0]") {
		t.Fatalf("bad fallback: %v", err)
	}
}
