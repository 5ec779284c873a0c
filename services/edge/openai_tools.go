package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// defaultToolParameters is the input schema of a function declared
// without parameters (OpenAI's default: no arguments).
var defaultToolParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// oaTool is one entry of a request's tools.
type oaTool struct {
	Type     string      `json:"type"`
	Function *oaFunction `json:"function"`
	// CacheControl asks for a cache point after the tool (see
	// cachePoint).
	CacheControl json.RawMessage `json:"cache_control"`
}

// oaFunction declares a function tool. strict is accepted: the schema is
// passed on, and a provider that cannot enforce it does not.
type oaFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// oaToolCall is a tool call in an assistant message, in a request or in a
// non-streamed answer.
type oaToolCall struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Function oaFunctionCall `json:"function"`
}

// oaFunctionCall names the function called and its arguments (a JSON
// object written as a string).
type oaFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// oaToolCallDelta is a piece of a tool call in a streamed chunk: the first
// piece of a call carries its id, type and name, later ones arguments.
type oaToolCallDelta struct {
	Index    int                 `json:"index"`
	ID       string              `json:"id,omitempty"`
	Type     string              `json:"type,omitempty"`
	Function oaFunctionCallDelta `json:"function"`
}

type oaFunctionCallDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// toToolConfig translates tools and tool_choice.
func toToolConfig(tools []oaTool, choice json.RawMessage) (*bus.ToolConfig, *apiError) {
	choice = bytes.TrimSpace(choice)
	hasChoice := len(choice) > 0 && string(choice) != "null"
	if len(tools) == 0 {
		if hasChoice {
			return nil, badParam("tool_choice", "tool_choice is set but tools is empty: offer tools or leave tool_choice out")
		}
		return nil, nil
	}
	tc := &bus.ToolConfig{Tools: make([]bus.Tool, 0, len(tools))}
	names := make([]string, len(tools))
	for i, t := range tools {
		if t.Type != "function" {
			return nil, badParam(fmt.Sprintf("tools[%d].type", i), "tools[%d].type %q is not supported; only function tools are", i, t.Type)
		}
		f := t.Function
		if f == nil || f.Name == "" {
			return nil, badParam(fmt.Sprintf("tools[%d].function.name", i), "tools[%d].function.name is required", i)
		}
		params := bytes.TrimSpace(f.Parameters)
		if len(params) == 0 || string(params) == "null" {
			params = defaultToolParameters
		} else if params[0] != '{' {
			return nil, badParam(fmt.Sprintf("tools[%d].function.parameters", i), "tools[%d].function.parameters must be a JSON Schema object", i)
		}
		names[i] = f.Name
		tc.Tools = append(tc.Tools, bus.Tool{ToolSpec: &bus.ToolSpec{Name: f.Name, Description: f.Description, InputSchema: bus.ToolInputSchema{JSON: params}}})
		point, aerr := cachePoint(t.CacheControl, fmt.Sprintf("tools[%d].cache_control", i))
		if aerr != nil {
			return nil, aerr
		}
		if point != nil {
			tc.Tools = append(tc.Tools, bus.Tool{CachePoint: point})
		}
	}
	if !hasChoice {
		return tc, nil
	}
	var mode string
	if json.Unmarshal(choice, &mode) == nil {
		switch mode {
		case "auto":
			tc.ToolChoice = &bus.ToolChoice{Auto: &struct{}{}}
		case "required":
			tc.ToolChoice = &bus.ToolChoice{Any: &struct{}{}}
		case "none":
			tc.ToolChoice = &bus.ToolChoice{None: &struct{}{}}
		default:
			return nil, badParam("tool_choice", "tool_choice %q is not supported; use none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}", mode)
		}
		return tc, nil
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(choice, &named); err != nil || named.Type != "function" {
		return nil, badParam("tool_choice", `tool_choice must be "none", "auto", "required" or {"type":"function","function":{"name":...}}`)
	}
	if !slices.Contains(names, named.Function.Name) {
		return nil, badParam("tool_choice.function.name", "tool_choice.function.name %q is not one of the tools", named.Function.Name)
	}
	tc.ToolChoice = &bus.ToolChoice{Tool: &bus.SpecificTool{Name: named.Function.Name}}
	return tc, nil
}

// toolUseBlocks translates an assistant message's tool_calls.
func toolUseBlocks(calls []oaToolCall, i int) ([]bus.ContentBlock, *apiError) {
	blocks := make([]bus.ContentBlock, len(calls))
	for j, c := range calls {
		field := fmt.Sprintf("messages[%d].tool_calls[%d]", i, j)
		if c.Type != "" && c.Type != "function" {
			return nil, badParam(field+".type", "%s.type %q is not supported; only function calls are", field, c.Type)
		}
		if c.ID == "" {
			return nil, badParam(field+".id", "%s.id is required", field)
		}
		if c.Function.Name == "" {
			return nil, badParam(field+".function.name", "%s.function.name is required", field)
		}
		args := bytes.TrimSpace([]byte(c.Function.Arguments))
		if len(args) == 0 {
			args = []byte("{}") // a call of a function without arguments
		}
		if args[0] != '{' || !json.Valid(args) {
			return nil, badParam(field+".function.arguments", "%s.function.arguments must be a JSON object written as a string", field)
		}
		blocks[j] = bus.ContentBlock{ToolUse: &bus.ToolUseBlock{ToolUseID: c.ID, Name: c.Function.Name, Input: json.RawMessage(args)}}
	}
	return blocks, nil
}

// toolResultBlocks translates a tool message: its text becomes the result
// of the call named by tool_call_id, followed by a cache point when a part
// of it has a cache_control.
func toolResultBlocks(m oaInMessage, i int) ([]bus.ContentBlock, *apiError) {
	if m.ToolCallID == "" {
		return nil, badParam(fmt.Sprintf("messages[%d].tool_call_id", i), "messages[%d].tool_call_id is required in a tool message", i)
	}
	texts, cached, aerr := contentTexts(m.Content, i)
	if aerr != nil {
		return nil, aerr
	}
	r := &bus.ToolResultBlock{ToolUseID: m.ToolCallID, Content: make([]bus.ToolResultContent, len(texts))}
	for j, t := range texts {
		r.Content[j] = bus.ToolResultContent{Text: t}
	}
	blocks := []bus.ContentBlock{{ToolResult: r}}
	if cached {
		// A part's cache point follows the whole result: a result's
		// content holds no cache point.
		blocks = append(blocks, bus.ContentBlock{CachePoint: &bus.CachePoint{Type: bus.CachePointDefault}})
	}
	return blocks, nil
}

// checkToolTurns checks, in the caller's own message numbering, that every
// tool message answers a call of the assistant message before it (tool
// messages in between) and that every such call is answered before the
// next other message, as OpenAI requires.
func checkToolTurns(msgs []oaInMessage) *apiError {
	var open []string // calls of the last assistant message not yet answered
	from := -1        // index of that assistant message
	for i, m := range msgs {
		if m.Role == "tool" {
			k := slices.Index(open, m.ToolCallID)
			if k < 0 {
				return badParam(fmt.Sprintf("messages[%d].tool_call_id", i), "messages[%d].tool_call_id %q answers no tool call: a tool message must follow the assistant message whose tool_calls holds that id", i, m.ToolCallID)
			}
			open = slices.Delete(open, k, k+1)
			continue
		}
		if len(open) > 0 {
			return badParam(fmt.Sprintf("messages[%d]", i), "messages[%d] comes before every tool call of messages[%d] is answered: send a tool message for tool_call_id %q first", i, from, open[0])
		}
		open, from = nil, -1
		if m.Role == "assistant" {
			for _, c := range m.ToolCalls {
				open = append(open, c.ID)
			}
			from = i
		}
	}
	return nil
}
