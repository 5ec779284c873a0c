package chat

import (
	"fmt"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// Message roles a request may carry.
const (
	roleUser      = "user"
	roleAssistant = "assistant"
)

// requestError is a request the client must fix; it becomes one error
// event of Type (a bus.ErrType* constant) with Message naming the field.
type requestError struct {
	Type    string
	Message string
}

func (e *requestError) Error() string { return e.Type + ": " + e.Message }

func invalid(format string, args ...any) *requestError {
	return &requestError{Type: bus.ErrTypeValidation, Message: fmt.Sprintf(format, args...)}
}

// validated is a request ready to answer.
type validated struct {
	model     *Model
	maxTokens int
	// need is what the request asks of a model besides text.
	need needs
	// cache is what the request asks of the upstream's prompt cache.
	cache cacheUse
}

// validate checks a decoded chat request against the catalog and limits.
func (s *Service) validate(req *bus.ChatRequest) (validated, *requestError) {
	if req.Stop != "" {
		return validated{}, invalid("stop must be sent alone, without messages")
	}
	if len(req.ConversationID) > MaxConversationIDBytes {
		return validated{}, invalid("conversationId is %d bytes, more than the limit of %d", len(req.ConversationID), MaxConversationIDBytes)
	}
	if e := req.ReasoningEffort; e != "" && !bus.ValidReasoningEffort(e) {
		return validated{}, invalid("reasoningEffort %q is not supported; use %s", e, strings.Join(bus.ReasoningEfforts, ", "))
	}
	if rerr := checkOpenAIParams(req.OpenAIParams); rerr != nil {
		return validated{}, rerr
	}
	if len(req.Messages) == 0 {
		return validated{}, invalid("messages is empty: at least one message is required")
	}
	if len(req.Messages) > s.cfg.MaxMessages {
		return validated{}, invalid("messages has %d entries, more than the limit of %d", len(req.Messages), s.cfg.MaxMessages)
	}
	cache, rerr := validateCachePoints(req)
	if rerr != nil {
		return validated{}, rerr
	}
	// Cache points (checked above) count no bytes.
	size, images := 0, 0
	need := needs{tools: req.ToolConfig != nil}
	toolBlocks := false
	for i, b := range req.System {
		if b.CachePoint != nil {
			continue
		}
		if strings.TrimSpace(b.Text) == "" {
			return validated{}, invalid("system[%d].text is empty", i)
		}
		size += len(b.Text)
	}
	for i, m := range req.Messages {
		if m.Role != roleUser && m.Role != roleAssistant {
			return validated{}, invalid("messages[%d].role is %q; want %q or %q", i, m.Role, roleUser, roleAssistant)
		}
		if len(m.Content) == 0 {
			return validated{}, invalid("messages[%d].content is empty", i)
		}
		for j, b := range m.Content {
			if b.CachePoint != nil {
				continue
			}
			if b.Image != nil {
				if images++; images > MaxImages {
					return validated{}, invalid("messages hold more than %d images, the limit per request", MaxImages)
				}
				need.vision = true
				need.imageURL = need.imageURL || b.Image.Source.URL != ""
			}
			toolBlocks = toolBlocks || b.ToolUse != nil || b.ToolResult != nil
			if b.ToolUse != nil || b.ToolResult != nil || b.Image != nil || b.ReasoningContent != nil {
				n, rerr := validateBlock(m, i, j)
				if rerr != nil {
					return validated{}, rerr
				}
				size += n
				continue
			}
			if strings.TrimSpace(b.Text) == "" {
				return validated{}, invalid("messages[%d].content[%d].text is empty", i, j)
			}
			size += len(b.Text)
		}
	}
	// What the catalog says the model cannot do is checked before the
	// tools, so that a request with tool blocks to a model that calls no
	// tools is told so rather than asked for the tools again. An unknown
	// model is refused below.
	need.tools = need.tools || toolBlocks
	model, known := s.models.lookup(req.ModelID)
	if known {
		if rerr := validateCapabilities(need, model); rerr != nil {
			return validated{}, rerr
		}
	}
	toolBytes, rerr := validateTools(req.ToolConfig, toolBlocks)
	if rerr != nil {
		return validated{}, rerr
	}
	size += toolBytes
	if rerr := validateToolTurns(req.Messages); rerr != nil {
		return validated{}, rerr
	}
	if last := len(req.Messages) - 1; req.Messages[last].Role != roleUser {
		return validated{}, invalid("messages[%d].role is %q; the last message must be from %q", last, req.Messages[last].Role, roleUser)
	}
	if size > s.cfg.MaxInputBytes {
		return validated{}, invalid("input (text, tool inputs and results, reasoning, tool specifications) is %d bytes, more than the limit of %d", size, s.cfg.MaxInputBytes)
	}

	if req.ModelID == "" {
		return validated{}, invalid("modelId is required")
	}
	if !known {
		return validated{}, &requestError{Type: bus.ErrTypeModelNotFound, Message: fmt.Sprintf("modelId %q is not a known model", req.ModelID)}
	}
	if need.imageURL && !provider.FetchesImages(s.upstreams[model.Provider].p) {
		return validated{}, invalid("model %s (provider %s) does not take images by URL: send each image's bytes inline (a data: URL)", model.ID, model.Provider)
	}
	if rerr := s.validateEffort(req.ReasoningEffort, model); rerr != nil {
		return validated{}, rerr
	}
	if rerr := s.validateOpenAIParams(req.OpenAIParams, model); rerr != nil {
		return validated{}, rerr
	}
	outBytes, rerr := s.validateOutput(req.OutputConfig, model)
	if rerr != nil {
		return validated{}, rerr
	}
	if size+outBytes > s.cfg.MaxInputBytes {
		return validated{}, invalid("input (text, tool inputs and results, tool specifications, output schema) is %d bytes, more than the limit of %d", size+outBytes, s.cfg.MaxInputBytes)
	}
	v := validated{model: model, maxTokens: model.DefaultMaxTokens, need: need, cache: cache}
	limit := model.MaxTokens
	if s.cfg.MaxOutputTokens > 0 && s.cfg.MaxOutputTokens < limit {
		limit = s.cfg.MaxOutputTokens
	}
	v.maxTokens = min(v.maxTokens, limit)
	if ic := req.InferenceConfig; ic != nil {
		if ic.MaxTokens != 0 {
			if ic.MaxTokens < 1 || ic.MaxTokens > limit {
				return validated{}, invalid("inferenceConfig.maxTokens is %d; it must be within 1..%d for model %s", ic.MaxTokens, limit, model.ID)
			}
			v.maxTokens = ic.MaxTokens
		}
		if t := ic.Temperature; t != nil && (*t < 0 || *t > 2) {
			return validated{}, invalid("inferenceConfig.temperature is %g; it must be within 0..2", *t)
		}
		if p := ic.TopP; p != nil && (*p < 0 || *p > 1) {
			return validated{}, invalid("inferenceConfig.topP is %g; it must be within 0..1", *p)
		}
		if p := ic.PresencePenalty; p != nil && (*p < -2 || *p > 2) {
			return validated{}, invalid("inferenceConfig.presencePenalty is %g; it must be within -2..2", *p)
		}
		if p := ic.FrequencyPenalty; p != nil && (*p < -2 || *p > 2) {
			return validated{}, invalid("inferenceConfig.frequencyPenalty is %g; it must be within -2..2", *p)
		}
	}
	if model.ContextWindow > 0 {
		n, _ := s.upstreams[model.Provider].p.InputTokens(&provider.Call{System: req.System, Messages: req.Messages, Tools: req.ToolConfig, Output: outputFormat(req)})
		if in := int(n); in+v.maxTokens > model.ContextWindow {
			return validated{}, invalid("input (about %d tokens) plus maxTokens (%d) exceeds the context window of %d tokens of model %s", in, v.maxTokens, model.ContextWindow, model.ID)
		}
	}
	return v, nil
}
