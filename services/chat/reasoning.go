package chat

import (
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// validateReasoning checks reasoning sent back in content block j of
// message i (see [bus.ReasoningBlock]) and returns its size.
func validateReasoning(m bus.Message, i, j int) (int, *requestError) {
	r := m.Content[j].ReasoningContent
	if m.Role != roleAssistant {
		return 0, invalid("messages[%d].content[%d].reasoningContent is in a %q message; only assistant messages hold the model's reasoning", i, j, m.Role)
	}
	switch {
	case r.ReasoningText != nil && len(r.RedactedContent) > 0:
		return 0, invalid("messages[%d].content[%d].reasoningContent sets both reasoningText and redactedContent; set one", i, j)
	case r.ReasoningText != nil:
		if r.ReasoningText.Text == "" {
			return 0, invalid("messages[%d].content[%d].reasoningContent.reasoningText.text is empty", i, j)
		}
	case len(r.RedactedContent) == 0:
		return 0, invalid("messages[%d].content[%d].reasoningContent is empty: set reasoningText or redactedContent", i, j)
	}
	only := true
	for _, b := range m.Content {
		only = only && (b.ReasoningContent != nil || b.CachePoint != nil)
	}
	if only {
		return 0, invalid("messages[%d] holds only reasoning; an assistant turn also needs its text or tool calls", i)
	}
	return provider.BlockBytes(m.Content[j]), nil
}
