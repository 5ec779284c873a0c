package chat

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// validateTools checks a request's toolConfig. It returns the bytes the
// tool specifications add to the input.
func validateTools(tc *bus.ToolConfig, hasToolBlocks bool) (int, *requestError) {
	if tc == nil {
		if hasToolBlocks {
			return 0, invalid("messages hold toolUse or toolResult blocks but toolConfig is missing: send the tools again with every request of the conversation")
		}
		return 0, nil
	}
	if len(tc.Tools) == 0 {
		return 0, invalid("toolConfig.tools is empty: offer at least one tool, or leave toolConfig out")
	}
	if n := toolCount(tc); n > MaxTools {
		return 0, invalid("toolConfig.tools has %d tools, more than the limit of %d", n, MaxTools)
	}
	names := make(map[string]bool, len(tc.Tools))
	for i, t := range tc.Tools {
		spec := t.ToolSpec
		if spec == nil && t.CachePoint != nil {
			continue // checked by validateCachePoints
		}
		if spec == nil {
			return 0, invalid("toolConfig.tools[%d].toolSpec is missing", i)
		}
		if !validToolName(spec.Name) {
			return 0, invalid("toolConfig.tools[%d].toolSpec.name %q is not a valid tool name: use 1 to %d of a-z, A-Z, 0-9, _ and -", i, spec.Name, MaxToolNameBytes)
		}
		if names[spec.Name] {
			return 0, invalid("toolConfig.tools[%d].toolSpec.name %q is offered twice; tool names must be unique", i, spec.Name)
		}
		names[spec.Name] = true
		if !isJSONObject(spec.InputSchema.JSON) {
			return 0, invalid("toolConfig.tools[%d].toolSpec.inputSchema.json must be a JSON Schema object", i)
		}
	}
	if c := tc.ToolChoice; c != nil {
		set := 0
		for _, on := range []bool{c.Auto != nil, c.Any != nil, c.Tool != nil, c.None != nil} {
			if on {
				set++
			}
		}
		if set != 1 {
			return 0, invalid("toolConfig.toolChoice must set exactly one of auto, any, tool and none; it sets %d", set)
		}
		if c.Tool != nil && !names[c.Tool.Name] {
			return 0, invalid("toolConfig.toolChoice.tool.name %q is not one of toolConfig.tools", c.Tool.Name)
		}
	}
	return provider.ToolConfigBytes(tc), nil
}

// toolCount is how many tools tc offers: its entries but cache points.
func toolCount(tc *bus.ToolConfig) int {
	n := 0
	for _, t := range tc.Tools {
		if t.CachePoint == nil {
			n++
		}
	}
	return n
}

// validateBlock checks content block j of message i and returns its size.
func validateBlock(m bus.Message, i, j int) (int, *requestError) {
	b := m.Content[j]
	kinds := 0
	for _, set := range []bool{b.Text != "", b.Image != nil, b.ToolUse != nil, b.ToolResult != nil, b.ReasoningContent != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return 0, invalid("messages[%d].content[%d] sets more than one of text, image, toolUse, toolResult and reasoningContent", i, j)
	case b.Image != nil:
		return 0, validateImage(m, i, j)
	case b.ReasoningContent != nil:
		return validateReasoning(m, i, j)
	case b.ToolUse != nil:
		u := b.ToolUse
		if m.Role != roleAssistant {
			return 0, invalid("messages[%d].content[%d].toolUse is in a %q message; only assistant messages call tools", i, j, m.Role)
		}
		if rerr := checkToolUseID(u.ToolUseID, "messages[%d].content[%d].toolUse.toolUseId", i, j); rerr != nil {
			return 0, rerr
		}
		if !validToolName(u.Name) {
			return 0, invalid("messages[%d].content[%d].toolUse.name %q is not a valid tool name", i, j, u.Name)
		}
		if !isJSONObject(u.Input) {
			return 0, invalid("messages[%d].content[%d].toolUse.input must be a JSON object", i, j)
		}
		return provider.BlockBytes(b), nil
	case b.ToolResult != nil:
		r := b.ToolResult
		if m.Role != roleUser {
			return 0, invalid("messages[%d].content[%d].toolResult is in a %q message; tool results go in user messages", i, j, m.Role)
		}
		if rerr := checkToolUseID(r.ToolUseID, "messages[%d].content[%d].toolResult.toolUseId", i, j); rerr != nil {
			return 0, rerr
		}
		if r.Status != "" && r.Status != bus.ToolResultSuccess && r.Status != bus.ToolResultError {
			return 0, invalid("messages[%d].content[%d].toolResult.status is %q; want %q or %q", i, j, r.Status, bus.ToolResultSuccess, bus.ToolResultError)
		}
		if len(r.Content) == 0 {
			return 0, invalid("messages[%d].content[%d].toolResult.content is empty", i, j)
		}
		for k, c := range r.Content {
			switch {
			case c.Text != "" && len(c.JSON) > 0:
				return 0, invalid("messages[%d].content[%d].toolResult.content[%d] sets both text and json", i, j, k)
			case len(c.JSON) > 0:
				if !json.Valid(c.JSON) {
					return 0, invalid("messages[%d].content[%d].toolResult.content[%d].json is not valid JSON", i, j, k)
				}
			case c.Text == "":
				return 0, invalid("messages[%d].content[%d].toolResult.content[%d] is empty: set text or json", i, j, k)
			}
		}
		return provider.BlockBytes(b), nil
	}
	return 0, nil
}

// validateToolTurns checks that tool calls and results pair up as both
// Bedrock and OpenAI require: every toolUse of an assistant message is
// answered by a toolResult with its id in the next message, and every
// toolResult answers a toolUse of the message before it.
func validateToolTurns(msgs []bus.Message) *requestError {
	for i, m := range msgs {
		var prev []string
		if i > 0 && msgs[i-1].Role == roleAssistant {
			for _, b := range msgs[i-1].Content {
				if b.ToolUse != nil {
					prev = append(prev, b.ToolUse.ToolUseID)
				}
			}
		}
		answered := make(map[string]bool, len(prev))
		for j, b := range m.Content {
			if b.ToolResult == nil {
				continue
			}
			id := b.ToolResult.ToolUseID
			if !slices.Contains(prev, id) {
				if len(prev) == 0 {
					return invalid("messages[%d].content[%d].toolResult.toolUseId %q answers no toolUse: a toolResult must follow an assistant message that calls tools", i, j, id)
				}
				return invalid("messages[%d].content[%d].toolResult.toolUseId %q answers no toolUse of messages[%d]", i, j, id, i-1)
			}
			if answered[id] {
				return invalid("messages[%d].content[%d].toolResult.toolUseId %q is answered twice", i, j, id)
			}
			answered[id] = true
		}
		if m.Role == roleAssistant {
			continue
		}
		for _, id := range prev {
			if !answered[id] {
				return invalid("messages[%d] must hold a toolResult for toolUseId %q of messages[%d]", i, id, i-1)
			}
		}
	}
	return nil
}

func checkToolUseID(id, field string, i, j int) *requestError {
	if id == "" || len(id) > MaxToolUseIDBytes {
		return invalid(field+" must be 1 to %d bytes long", i, j, MaxToolUseIDBytes)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f {
			return invalid(field+" holds a space or a character outside printable ASCII", i, j)
		}
	}
	return nil
}

// validToolName reports whether name is 1 to MaxToolNameBytes of
// [a-zA-Z0-9_-].
func validToolName(name string) bool {
	if name == "" || len(name) > MaxToolNameBytes {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isJSONObject reports whether raw is a valid JSON object.
func isJSONObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}
