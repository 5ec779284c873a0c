package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// withTools offers get_weather.
func withTools(r *bus.ChatRequest) { r.ToolConfig = weatherTools() }

// withToolTurn makes the request a conversation ending with get_weather's
// result, without offering the tools again.
func withToolTurn(r *bus.ChatRequest) {
	r.Messages = toolTurn(bus.ToolResultBlock{ToolUseID: "call-1", Content: []bus.ToolResultContent{{Text: "18 C, sunny"}}})
}

// withToolTurnAndTools is [withToolTurn] offering the tools, as a valid
// request must.
func withToolTurnAndTools(r *bus.ChatRequest) { withToolTurn(r); withTools(r) }

// TestCapabilities: a model whose catalog entry says it reads no images
// or calls no tools is refused a request that needs them, with a
// validation error naming the model and the setting, and its upstream is
// never called; a model without the flags takes both. The catalog
// endpoint reports each model's capabilities.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"I", " see"}, Usage: &providertest.Usage{InputTokens: 3, OutputTokens: 1}})
	t.Cleanup(fake.Close)
	cfg := chat.Config{
		Providers: []chat.ProviderConfig{{Name: "oa", Type: chat.ProviderTypeOpenAI, BaseURL: fake.URL}},
		Models: []chat.Model{
			{ID: "text-only", Aliases: []string{"plain"}, Provider: "oa", DefaultMaxTokens: 100, MaxTokens: 1000, NoVision: true, NoTools: true},
			{ID: "blind", Provider: "oa", DefaultMaxTokens: 100, MaxTokens: 1000, NoVision: true},
			{ID: "full", Provider: "oa", UpstreamModel: "full-up", DefaultMaxTokens: 100, MaxTokens: 1000},
		},
	}
	h := newHarness(t, cfg, contractOpts{})
	pic := tinyPNG(t)
	const (
		noImages = "model text-only does not read images (chat.models[].vision is false): send text only or use a model that does"
		noTools  = "model text-only does not call tools (chat.models[].tools is false): send no tools, tool calls or tool results, or use a model that does"
	)
	cases := []struct {
		name, model string
		mod         func(*bus.ChatRequest)
		want        string
	}{
		{"image", "text-only", withImage(bus.ImagePNG, pic), noImages},
		{"image by alias", "plain", withImage(bus.ImagePNG, pic), noImages},
		{"image url", "text-only", withImageURL("https://example.com/a.png"), noImages},
		{"tools", "text-only", withTools, noTools},
		{"tool choice none", "text-only", func(r *bus.ChatRequest) {
			withTools(r)
			r.ToolConfig.ToolChoice = &bus.ToolChoice{None: &struct{}{}}
		}, noTools},
		{"tool turn", "text-only", withToolTurnAndTools, noTools},
		// Without toolConfig the request is told the model calls no
		// tools, not asked to send the tools again.
		{"tool blocks only", "text-only", withToolTurn, noTools},
		{"image to blind", "blind", withImage(bus.ImagePNG, pic), "model blind does not read images"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.refused(t, user("cap-"+tc.model), "cap-"+strings.ReplaceAll(tc.name, " ", "-"), modelRequest(tc.model, "what is it", tc.mod), tc.want)
		})
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d upstream requests for refused requests", n)
	}
	if reserves, _, _ := h.c.snapshot(); len(reserves) != 0 {
		t.Fatalf("refused requests reached meter: %+v", reserves)
	}

	// What a model can do goes through: text to text-only, tools to blind,
	// images and tools to a model without the flags.
	who := user("cap-ok")
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	for i, tc := range []struct {
		model string
		mod   func(*bus.ChatRequest)
	}{
		{"text-only", func(*bus.ChatRequest) {}},
		{"blind", withToolTurnAndTools},
		{"full", withImage(bus.ImagePNG, pic)},
		{"full", func(r *bus.ChatRequest) { withToolTurnAndTools(r); withImage(bus.ImagePNG, pic)(r) }},
	} {
		reqID := "cap-ok-" + string(rune('a'+i))
		h.publish(who, reqID, modelRequest(tc.model, "look "+reqID, tc.mod), nil)
		checkAnswer(t, answer(t, sub), reqID, "conv-1", "I see", "end_turn")
	}
	reqs := fake.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d upstream requests, want 4", len(reqs))
	}
	if _, ok := reqs[1].Body["tools"]; !ok {
		t.Fatalf("blind was not sent the tools: %v", reqs[1].Body)
	}
	if reqs[3].Body["model"] != "full-up" || reqs[3].Body["tools"] == nil || !containsImagePart(reqs[3].Body["messages"]) {
		t.Fatalf("full's request %v", reqs[3].Body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, err := bus.Request[bus.ModelsResponse](ctx, h.nc, h.subj.ChatModels(), bus.ModelsRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []bus.ModelCapabilities{{}, {Tools: true}, {Vision: true, Tools: true}}
	for i, m := range resp.Models {
		if m.Capabilities == nil || *m.Capabilities != want[i] {
			t.Fatalf("model %s: capabilities %+v, want %+v", m.ID, m.Capabilities, want[i])
		}
	}
}

// containsImagePart reports whether OpenAI messages hold an image_url part.
func containsImagePart(messages any) bool {
	ms, _ := messages.([]any)
	for _, m := range ms {
		parts, _ := m.(map[string]any)["content"].([]any)
		for _, p := range parts {
			if pm, _ := p.(map[string]any); pm["type"] == "image_url" {
				return true
			}
		}
	}
	return false
}

// TestCapabilityFallbacks: when a model fails before its first token, a
// fallback the catalog says cannot read the request's images or call its
// tools is skipped for the next one, and is used for a request that does
// not need what it lacks.
func TestCapabilityFallbacks(t *testing.T) {
	t.Parallel()
	failing := providertest.NewOpenAI(providertest.Reply{Status: 500})
	t.Cleanup(failing.Close)
	good := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"all", " fine"}, Usage: &providertest.Usage{InputTokens: 3, OutputTokens: 1}})
	t.Cleanup(good.Close)
	cfg := chat.Config{
		Providers: []chat.ProviderConfig{
			{Name: "down", Type: chat.ProviderTypeOpenAI, BaseURL: failing.URL},
			{Name: "up", Type: chat.ProviderTypeOpenAI, BaseURL: good.URL},
		},
		Models: []chat.Model{
			{ID: "images-first", Provider: "down", DefaultMaxTokens: 100, MaxTokens: 1000, Fallbacks: []string{"blind", "mute"}},
			{ID: "tools-first", Provider: "down", DefaultMaxTokens: 100, MaxTokens: 1000, Fallbacks: []string{"mute", "blind"}},
			{ID: "blind", Provider: "up", UpstreamModel: "blind-up", DefaultMaxTokens: 100, MaxTokens: 1000, NoVision: true},
			{ID: "mute", Provider: "up", UpstreamModel: "mute-up", DefaultMaxTokens: 100, MaxTokens: 1000, NoTools: true},
		},
		RetryAttempts: 1,
		RetryBackoff:  time.Millisecond,
	}
	h := newHarness(t, cfg, contractOpts{})
	pic := tinyPNG(t)
	who := user("cap-fb")
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	for _, tc := range []struct {
		name, model string
		mod         func(*bus.ChatRequest)
		served      string // the upstream model that answers
	}{
		{"image skips blind", "images-first", withImage(bus.ImagePNG, pic), "mute-up"},
		{"text takes blind", "images-first", func(*bus.ChatRequest) {}, "blind-up"},
		{"tools skip mute", "tools-first", withTools, "blind-up"},
		{"tool turn skips mute", "tools-first", withToolTurnAndTools, "blind-up"},
		{"text takes mute", "tools-first", func(*bus.ChatRequest) {}, "mute-up"},
	} {
		before := len(good.Requests())
		reqID := strings.ReplaceAll(tc.name, " ", "-")
		h.publish(who, reqID, modelRequest(tc.model, tc.name, tc.mod), nil)
		checkAnswer(t, answer(t, sub), reqID, "conv-1", "all fine", "end_turn")
		reqs := good.Requests()
		if len(reqs) != before+1 || reqs[before].Body["model"] != tc.served {
			t.Fatalf("%s: %d requests to the fallbacks' server, the new one for %v; want one, for %s", tc.name, len(reqs)-before, reqs[len(reqs)-1].Body["model"], tc.served)
		}
	}
	if n := len(failing.Requests()); n != 5 {
		t.Fatalf("%d requests to the failing server, want 5 (one per request)", n)
	}
}
