package edge

import (
	"encoding/base64"
	"fmt"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Thinking block types of the OpenAI API's thinking_blocks (the field
// LiteLLM and other gateways use for Claude's extended thinking; OpenAI's
// own API has none).
const (
	thinkingTypeText     = "thinking"
	thinkingTypeRedacted = "redacted_thinking"
)

// oaThinkingBlock is one block of a model's reasoning that a client sends
// back, as it came, in the assistant message of a later turn: the
// reasoning text with its signature, or redacted reasoning's encrypted
// data (base64). Claude with extended thinking requires them with tool
// results.
type oaThinkingBlock struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

// reasoningBlocks translates the thinking_blocks of message i, an
// assistant message, into the bus's reasoning blocks.
func reasoningBlocks(tbs []oaThinkingBlock, i int) ([]bus.ContentBlock, *apiError) {
	out := make([]bus.ContentBlock, 0, len(tbs))
	for k, tb := range tbs {
		field := fmt.Sprintf("messages[%d].thinking_blocks[%d]", i, k)
		switch tb.Type {
		case thinkingTypeText:
			if tb.Thinking == "" {
				return nil, badParam(field+".thinking", "%s.thinking is empty", field)
			}
			if tb.Signature == "" {
				return nil, badParam(field+".signature", "%s.signature is missing: send each thinking block back as the answer gave it", field)
			}
			out = append(out, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: tb.Thinking, Signature: tb.Signature}}})
		case thinkingTypeRedacted:
			data, err := base64.StdEncoding.DecodeString(tb.Data)
			if err != nil || len(data) == 0 {
				return nil, badParam(field+".data", "%s.data must be the block's data as the answer gave it (non-empty standard base64)", field)
			}
			out = append(out, bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{RedactedContent: data}})
		default:
			return nil, badParam(field+".type", "%s.type %q is not supported; use %q or %q", field, tb.Type, thinkingTypeText, thinkingTypeRedacted)
		}
	}
	return out, nil
}

// thinkingTracker collects the reasoning blocks of an answer so that each
// can be handed to the client whole once it ends: a text block when its
// signature arrives, a redacted block at once. Reasoning without a
// signature (models that do not sign it) yields no block: it cannot be
// sent back.
type thinkingTracker struct {
	// text holds the reasoning text of each block still open, by content
	// block index.
	text map[int][]byte
	// done are the ended blocks, in order.
	done []oaThinkingBlock
}

// add takes a reasoning delta of block index and returns the block it
// ends, if any.
func (t *thinkingTracker) add(index int, r *bus.ReasoningDelta) *oaThinkingBlock {
	switch {
	case len(r.RedactedContent) > 0:
		t.done = append(t.done, oaThinkingBlock{Type: thinkingTypeRedacted, Data: base64.StdEncoding.EncodeToString(r.RedactedContent)})
	case r.Signature != "":
		b := oaThinkingBlock{Type: thinkingTypeText, Thinking: string(t.text[index]) + r.Text, Signature: r.Signature}
		delete(t.text, index)
		t.done = append(t.done, b)
	default:
		if t.text == nil {
			t.text = make(map[int][]byte)
		}
		t.text[index] = append(t.text[index], r.Text...)
		return nil
	}
	return &t.done[len(t.done)-1]
}
