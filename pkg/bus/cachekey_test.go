package bus_test

import (
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// TestCacheKeyStable pins the key of a text-only request without tools to
// the value the code before tools, images and output formats computed:
// stored and imported answers must stay reachable. Tools, a tool block, an
// image, a reasoning block, an output format or a reasoning effort each
// give another key, and so does each effort.
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
