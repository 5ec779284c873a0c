package provider

import "github.com/gatehouse-ai/gatehouse/pkg/bus"

// bytesPerToken is the rule of thumb used to estimate tokens of a provider
// that reports none: about four bytes of English text per token.
const bytesPerToken = 4

// ImageTokenEstimate is the input tokens estimated for one image, whatever
// its size. It is an upper bound for Claude on Bedrock, which scales an
// image down to at most about 1.15 megapixels and counts about
// width × height / 750 tokens: some 1,600. OpenAI's gpt-4o in high detail
// counts 85 + 170 per 512px tile of the image scaled to 768px on its short
// side, at most 1,445 (765 for a 1024×1024 image); models that bill images
// at a multiple (gpt-4o-mini, gpt-4.1-mini) count more. It stays an
// estimate, which the usage an upstream reports replaces.
const ImageTokenEstimate = 1600

// EstimateTokens estimates the tokens of text: one per started
// [bytesPerToken] bytes.
func EstimateTokens(text string) int64 {
	return int64((len(text) + bytesPerToken - 1) / bytesPerToken)
}

// EstimateInput estimates the input tokens of call: system, messages
// (text, tool inputs and results, [ImageTokenEstimate] per image) and tool
// specifications.
func EstimateInput(call *Call) int64 {
	var n int64
	for _, s := range call.System {
		n += EstimateTokens(s.Text)
	}
	for _, m := range call.Messages {
		for _, b := range m.Content {
			if b.Image != nil {
				n += ImageTokenEstimate
			}
			n += int64((BlockBytes(b) + bytesPerToken - 1) / bytesPerToken)
		}
	}
	n += int64((ToolConfigBytes(call.Tools) + OutputBytes(call.Output) + bytesPerToken - 1) / bytesPerToken)
	return n
}

// BlockBytes is the size of a content block's text, tool input, tool
// result or reasoning sent back: what a model reads of it as text. An
// image block has none: its bytes are not text (its tokens are
// [ImageTokenEstimate]).
func BlockBytes(b bus.ContentBlock) int {
	n := len(b.Text)
	if r := b.ReasoningContent; r != nil {
		n += r.Bytes()
	}
	if u := b.ToolUse; u != nil {
		n += len(u.Name) + len(u.Input)
	}
	if r := b.ToolResult; r != nil {
		for _, c := range r.Content {
			n += len(c.Text) + len(c.JSON)
		}
	}
	return n
}

// ToolConfigBytes is the size of the tools' names, descriptions and
// schemas (0 for nil).
func ToolConfigBytes(tc *bus.ToolConfig) int {
	if tc == nil {
		return 0
	}
	n := 0
	for _, t := range tc.Tools {
		if t.ToolSpec != nil {
			n += len(t.ToolSpec.Name) + len(t.ToolSpec.Description) + len(t.ToolSpec.InputSchema.JSON)
		}
	}
	return n
}

// OutputBytes is the size of an output format's schema, name and
// description (0 for nil).
func OutputBytes(f *bus.OutputFormat) int {
	if f == nil || f.Structure == nil || f.Structure.JSONSchema == nil {
		return 0
	}
	d := f.Structure.JSONSchema
	return len(d.Schema) + len(d.Name) + len(d.Description)
}
