package bus_test

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// TestCacheKeyStable pins the key of a text-only request without tools to
// the value the code before tools, images and output formats computed:
// stored and imported answers must stay reachable. Tools, a tool block, an
// image, a reasoning block, an output format, a reasoning effort, a logit
// bias or a verbosity each give another key, and so does each effort and
// each verbosity. The OpenAI hints (user, safety_identifier,
// prompt_cache_key, service_tier) give the plain key.
func TestCacheKeyStable(t *testing.T) {
	t.Parallel()
	temp := 0.5
	req := bus.ChatRequest{ModelID: "m", System: []bus.ContentBlock{{Text: " be brief "}}, InferenceConfig: &bus.InferenceConfig{MaxTokens: 7, Temperature: &temp, StopSequences: []string{"END"}},
		Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hello"}, {Text: " there "}}}, {Role: "Assistant", Content: []bus.ContentBlock{{Text: "hi"}}}, {Role: "user", Content: []bus.ContentBlock{{Text: "again"}}}}}
	const want = "78fba9312685d27ec20deac03de049faaf34f9f37298d436ad22a5f90141b51b" // computed at ae7b7d9
	if got := bus.CacheKey("user:acme/alice", "m", req); got != want {
		t.Fatalf("key %s, want %s", got, want)
	}
	variants := map[string]func(*bus.ChatRequest){
		"tools": func(r *bus.ChatRequest) {
			r.ToolConfig = &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "f", InputSchema: bus.ToolInputSchema{JSON: []byte(`{}`)}}}}}
		},
		"image": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{Image: &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: []byte{1}}}})
		},
		"image url": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{Image: &bus.ImageBlock{Source: bus.ImageSource{URL: "https://x/a.png"}}})
		},
		"tool result": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{ToolResult: &bus.ToolResultBlock{ToolUseID: "a", Content: []bus.ToolResultContent{{Text: "r"}}}})
		},
		"reasoning": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "t", Signature: "s"}}})
		},
		"reasoning, other signature": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "t", Signature: "s2"}}})
		},
		"reasoning, text and signature moved": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "ts", Signature: ""}}})
		},
		"redacted reasoning": func(r *bus.ChatRequest) {
			r.Messages[2].Content = append(r.Messages[2].Content, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{RedactedContent: []byte("ts")}})
		},
		"output": func(r *bus.ChatRequest) {
			r.OutputConfig = &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONObject}}
		},
	}
	for _, e := range bus.ReasoningEfforts {
		variants["effort "+e] = func(r *bus.ChatRequest) { r.ReasoningEffort = e }
	}
	for _, v := range bus.Verbosities {
		variants["verbosity "+v] = func(r *bus.ChatRequest) { r.OpenAIParams = &bus.OpenAIParams{Verbosity: v} }
	}
	variants["logit bias"] = func(r *bus.ChatRequest) {
		r.OpenAIParams = &bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100}}
	}
	variants["logit bias, other value"] = func(r *bus.ChatRequest) {
		r.OpenAIParams = &bus.OpenAIParams{LogitBias: map[string]float64{"50256": 100}}
	}
	variants["logit bias and verbosity"] = func(r *bus.ChatRequest) {
		r.OpenAIParams = &bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100}, Verbosity: "low", User: "u"}
	}
	seen := map[string]string{want: "plain"}
	for name, mod := range variants {
		r := req
		r.Messages = append([]bus.Message(nil), req.Messages...)
		r.Messages[2] = bus.Message{Role: "user", Content: append([]bus.ContentBlock(nil), req.Messages[2].Content...)}
		mod(&r)
		k := bus.CacheKey("user:acme/alice", "m", r)
		if other, dup := seen[k]; dup {
			t.Fatalf("%s has the key of %s", name, other)
		}
		seen[k] = name
	}
}

// TestCacheKeyOpenAIHints: the OpenAI hints leave the key as it is, alone
// or with a logit bias (whose keys' order does not matter either).
func TestCacheKeyOpenAIHints(t *testing.T) {
	t.Parallel()
	msgs := []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hello"}}}}
	hints := bus.OpenAIParams{User: "end-user-1", SafetyIdentifier: "h4sh", PromptCacheKey: "prefix-7", ServiceTier: "flex"}
	for _, tc := range []struct {
		name  string
		plain *bus.OpenAIParams
		with  *bus.OpenAIParams
	}{
		{"hints alone", nil, &hints},
		{"empty params", nil, &bus.OpenAIParams{LogitBias: map[string]float64{}}},
		{"hints beside a logit bias", &bus.OpenAIParams{LogitBias: map[string]float64{"1": 5, "2": -5}},
			&bus.OpenAIParams{LogitBias: map[string]float64{"2": -5, "1": 5}, User: "other-user", ServiceTier: "priority"}},
	} {
		a := bus.CacheKey("user:acme/alice", "m", bus.ChatRequest{ModelID: "m", Messages: msgs, OpenAIParams: tc.plain})
		b := bus.CacheKey("user:acme/alice", "m", bus.ChatRequest{ModelID: "m", Messages: msgs, OpenAIParams: tc.with})
		if a != b {
			t.Errorf("%s: key %s, want %s", tc.name, b, a)
		}
	}
}

// TestCacheKeyCachePoints: prompt cache points in the system blocks, the
// messages and the tools leave the key as it is: the pinned key of
// [TestCacheKeyStable], and a request with tools.
func TestCacheKeyCachePoints(t *testing.T) {
	t.Parallel()
	cp := &bus.CachePoint{Type: bus.CachePointDefault}
	temp := 0.5
	req := bus.ChatRequest{ModelID: "m", System: []bus.ContentBlock{{Text: " be brief "}, {CachePoint: cp}}, InferenceConfig: &bus.InferenceConfig{MaxTokens: 7, Temperature: &temp, StopSequences: []string{"END"}},
		Messages: []bus.Message{
			{Role: "user", Content: []bus.ContentBlock{{Text: "hello"}, {CachePoint: cp}, {Text: " there "}, {CachePoint: cp}}},
			{Role: "Assistant", Content: []bus.ContentBlock{{Text: "hi"}}},
			{Role: "user", Content: []bus.ContentBlock{{Text: "again"}, {CachePoint: cp}}}}}
	const want = "78fba9312685d27ec20deac03de049faaf34f9f37298d436ad22a5f90141b51b" // TestCacheKeyStable's
	if got := bus.CacheKey("user:acme/alice", "m", req); got != want {
		t.Fatalf("key with cache points %s, want %s", got, want)
	}

	spec := func(name string) bus.Tool {
		return bus.Tool{ToolSpec: &bus.ToolSpec{Name: name, InputSchema: bus.ToolInputSchema{JSON: []byte(`{"type":"object"}`)}}}
	}
	msgs := []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hello"}}}}
	plain := bus.ChatRequest{ModelID: "m", Messages: msgs, ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{spec("a"), spec("b")}}}
	with := bus.ChatRequest{ModelID: "m", Messages: msgs, ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{spec("a"), {CachePoint: cp}, spec("b"), {CachePoint: cp}}}}
	a, b := bus.CacheKey("user:acme/alice", "m", plain), bus.CacheKey("user:acme/alice", "m", with)
	if a != b {
		t.Fatalf("tools with cache points: key %s, want %s", b, a)
	}
	if len(with.ToolConfig.Tools) != 4 {
		t.Fatalf("CacheKey changed the request's tools: %+v", with.ToolConfig.Tools)
	}
	// The tools still count.
	if c := bus.CacheKey("user:acme/alice", "m", bus.ChatRequest{ModelID: "m", Messages: msgs}); c == a {
		t.Fatal("a request without tools has the key of one with tools")
	}
}

// TestToolCachePointJSON: a cache point in the tools list is Converse's
// {"cachePoint":{"type":"default"}}, with no toolSpec.
func TestToolCachePointJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(bus.ToolConfig{Tools: []bus.Tool{{CachePoint: &bus.CachePoint{Type: bus.CachePointDefault}}}})
	if err != nil || string(b) != `{"tools":[{"cachePoint":{"type":"default"}}]}` {
		t.Fatalf("%s %v", b, err)
	}
	req, err := bus.DecodeChatRequest([]byte(`{"system":[{"text":"s"},{"cachePoint":{"type":"default"}}],"toolConfig":{"tools":[{"cachePoint":{"type":"default"}}]}}`))
	if err != nil || req.System[1].CachePoint == nil || req.System[1].CachePoint.Type != "default" || req.ToolConfig.Tools[0].CachePoint == nil || req.ToolConfig.Tools[0].ToolSpec != nil {
		t.Fatalf("%+v %v", req, err)
	}
}
