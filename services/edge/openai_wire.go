package edge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// OpenAI-compatible API paths served by the edge.
const (
	PathChatCompletions = "/v1/chat/completions"
	PathModels          = "/v1/models"
)

// oaChatRequest is the subset of OpenAI's chat completion request the
// edge understands. Unknown fields are ignored, as OpenAI-compatible
// servers commonly do, except those listed in [unsupportedParams], whose
// answer would silently differ from what the caller asked for.
type oaChatRequest struct {
	Model               string           `json:"model"`
	Messages            []oaInMessage    `json:"messages"`
	MaxTokens           *int             `json:"max_tokens"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	Temperature         *float64         `json:"temperature"`
	TopP                *float64         `json:"top_p"`
	Stop                json.RawMessage  `json:"stop"`
	Seed                *int64           `json:"seed"`
	PresencePenalty     *float64         `json:"presence_penalty"`
	FrequencyPenalty    *float64         `json:"frequency_penalty"`
	N                   *int             `json:"n"`
	Stream              bool             `json:"stream"`
	StreamOptions       *oaStreamOptions `json:"stream_options"`
	Tools               []oaTool         `json:"tools"`
	ToolChoice          json.RawMessage  `json:"tool_choice"`
	// ParallelToolCalls goes with the tools (see
	// bus.ToolConfig.ParallelToolCalls); without tools it is ignored.
	ParallelToolCalls *bool `json:"parallel_tool_calls"`

	ResponseFormat json.RawMessage `json:"response_format"`
	// ReasoningEffort is one of bus.ReasoningEfforts; "" (absent or
	// null) leaves the model's default.
	ReasoningEffort string `json:"reasoning_effort"`

	// LogitBias, Verbosity and the hints User, SafetyIdentifier,
	// PromptCacheKey and ServiceTier become the bus's
	// [bus.OpenAIParams], checked by its Validate. LogitBias is kept raw
	// to name a bad entry (see toOpenAIParams).
	LogitBias        json.RawMessage `json:"logit_bias"`
	Verbosity        string          `json:"verbosity"`
	User             string          `json:"user"`
	SafetyIdentifier string          `json:"safety_identifier"`
	PromptCacheKey   string          `json:"prompt_cache_key"`
	ServiceTier      string          `json:"service_tier"`
	// Metadata and store (not decoded) are accepted and never passed on:
	// with store: true OpenAI keeps the conversation (and metadata tags
	// it) for its dashboard, evals and distillation, which a gateway must
	// not ask for its callers.
	Metadata map[string]string `json:"metadata"`

	// Parameters refused when set (see unsupportedParams).
	Logprobs     *bool           `json:"logprobs"`
	TopLogprobs  *int            `json:"top_logprobs"`
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
	Modalities   []string        `json:"modalities"`
}

// unsupportedParams refuses parameters that ask for a kind of answer
// Gatehouse does not produce, rather than ignore them and answer
// differently: log probabilities, audio, the legacy function fields (tools
// replace them).
func (r *oaChatRequest) unsupportedParams() *apiError {
	set := func(raw json.RawMessage) bool {
		raw = bytes.TrimSpace(raw)
		return len(raw) > 0 && string(raw) != "null"
	}
	if r.Logprobs != nil && *r.Logprobs {
		return badParam("logprobs", "logprobs is not supported")
	}
	if r.TopLogprobs != nil && *r.TopLogprobs > 0 {
		return badParam("top_logprobs", "top_logprobs is not supported")
	}
	if set(r.Functions) {
		return badParam("functions", "functions is not supported; declare them in tools as {\"type\":\"function\",\"function\":{...}}")
	}
	if set(r.FunctionCall) {
		return badParam("function_call", "function_call is not supported; use tool_choice")
	}
	if set(r.Audio) {
		return badParam("audio", "audio output is not supported")
	}
	for _, m := range r.Modalities {
		if m != "text" {
			return badParam("modalities", "modalities %q is not supported; only text is", m)
		}
	}
	return nil
}

type oaStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type oaInMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []oaToolCall    `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
	// ThinkingBlocks is the reasoning of an earlier answer, sent back
	// (assistant messages only).
	ThinkingBlocks []oaThinkingBlock `json:"thinking_blocks"`
}

type oaPart struct {
	Type     string      `json:"type"`
	Text     string      `json:"text"`
	ImageURL *oaImageURL `json:"image_url"`
	// CacheControl is Anthropic's prompt cache marker, the convention
	// LiteLLM and other OpenAI-compatible gateways follow: a cache point
	// after the part (see cachePoint).
	CacheControl json.RawMessage `json:"cache_control"`
}

// cacheControlEphemeral is the only cache_control type (Anthropic's).
const cacheControlEphemeral = "ephemeral"

// cacheTTLs are the cache_control ttl values accepted, passed on as the
// cache point's lifetime.
var cacheTTLs = []string{bus.CacheTTL5m, bus.CacheTTL1h}

// cachePoint reads a cache_control (field names it for errors): absent or
// null is no cache point, {"type":"ephemeral"} (with an optional ttl) is
// one, anything else is refused.
func cachePoint(raw json.RawMessage, field string) (*bus.CachePoint, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var cc struct {
		Type string          `json:"type"`
		TTL  json.RawMessage `json:"ttl"`
	}
	if err := json.Unmarshal(raw, &cc); err != nil || raw[0] != '{' {
		return nil, badParam(field, "%s must be an object: {\"type\":\"ephemeral\"}", field)
	}
	if cc.Type != cacheControlEphemeral {
		return nil, badParam(field+".type", "%s.type %q is not supported; use %q", field, cc.Type, cacheControlEphemeral)
	}
	cp := &bus.CachePoint{Type: bus.CachePointDefault}
	if ttl := bytes.TrimSpace(cc.TTL); len(ttl) > 0 && string(ttl) != "null" {
		if json.Unmarshal(ttl, &cp.TTL) != nil || !slices.Contains(cacheTTLs, cp.TTL) {
			return nil, badParam(field+".ttl", "%s.ttl must be %s", field, strings.Join(cacheTTLs, " or "))
		}
	}
	return cp, nil
}

// oaImageURL is an image_url part's image; detail is OpenAI's resolution
// hint, accepted and not passed on.
type oaImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail"`
}

// oaError is OpenAI's error object.
type oaError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// apiError is an OpenAI error with its HTTP status and Retry-After.
type apiError struct {
	status     int
	retryAfter int64 // seconds; 0 = no header
	body       oaError
}

func badParam(param, format string, args ...any) *apiError {
	p := param
	return &apiError{status: http.StatusBadRequest, body: oaError{Message: fmt.Sprintf(format, args...), Type: "invalid_request_error", Param: &p, Code: "invalid_value"}}
}

// toChatRequest translates an OpenAI request into the bus chat request.
// Consecutive messages of one role are merged (Bedrock requires
// alternation); system and developer messages become the system prompt.
func (r *oaChatRequest) toChatRequest() (bus.ChatRequest, *apiError) {
	var out bus.ChatRequest
	if r.Model == "" {
		return out, badParam("model", "model is required")
	}
	out.ModelID = r.Model
	if r.N != nil && *r.N != 1 {
		return out, badParam("n", "n is %d; only 1 is supported", *r.N)
	}
	if aerr := r.unsupportedParams(); aerr != nil {
		return out, aerr
	}
	if len(r.Messages) == 0 {
		return out, badParam("messages", "messages is empty: at least one message is required")
	}
	tools, aerr := toToolConfig(r.Tools, r.ToolChoice)
	if aerr != nil {
		return out, aerr
	}
	if tools != nil {
		tools.ParallelToolCalls = r.ParallelToolCalls
	}
	out.ToolConfig = tools
	if aerr := checkToolTurns(r.Messages); aerr != nil {
		return out, aerr
	}
	if out.OutputConfig, aerr = toOutputConfig(r.ResponseFormat); aerr != nil {
		return out, aerr
	}
	if r.ReasoningEffort != "" && !bus.ValidReasoningEffort(r.ReasoningEffort) {
		return out, badParam("reasoning_effort", "reasoning_effort %q is not supported; use %s", r.ReasoningEffort, strings.Join(bus.ReasoningEfforts, ", "))
	}
	out.ReasoningEffort = r.ReasoningEffort
	if out.OpenAIParams, aerr = r.toOpenAIParams(); aerr != nil {
		return out, aerr
	}
	add := func(role string, blocks []bus.ContentBlock) {
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
		} else {
			out.Messages = append(out.Messages, bus.Message{Role: role, Content: blocks})
		}
	}
	for i, m := range r.Messages {
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return out, badParam(fmt.Sprintf("messages[%d].tool_calls", i), "messages[%d].tool_calls is only allowed in assistant messages", i)
		}
		if len(m.ThinkingBlocks) > 0 && m.Role != "assistant" {
			return out, badParam(fmt.Sprintf("messages[%d].thinking_blocks", i), "messages[%d].thinking_blocks is only allowed in assistant messages", i)
		}
		switch m.Role {
		case "system", "developer":
			blocks, aerr := contentBlocks(m.Content, i, false)
			if aerr != nil {
				return out, aerr
			}
			out.System = append(out.System, blocks...)
		case "user", "assistant":
			// The reasoning comes first in the turn, as the model wrote it.
			blocks, aerr := reasoningBlocks(m.ThinkingBlocks, i)
			if aerr != nil {
				return out, aerr
			}
			if m.Role == "assistant" && len(m.ToolCalls) > 0 && isEmptyContent(m.Content) {
				// An assistant turn that only calls tools has no content.
			} else {
				content, aerr := contentBlocks(m.Content, i, m.Role == "user")
				if aerr != nil {
					return out, aerr
				}
				blocks = append(blocks, content...)
			}
			uses, aerr := toolUseBlocks(m.ToolCalls, i)
			if aerr != nil {
				return out, aerr
			}
			add(m.Role, append(blocks, uses...))
		case "tool":
			blocks, aerr := toolResultBlocks(m, i)
			if aerr != nil {
				return out, aerr
			}
			// Tool results travel in the user turn that follows the
			// assistant's calls (Converse's shape).
			add("user", blocks)
		default:
			return out, badParam(fmt.Sprintf("messages[%d].role", i), "messages[%d].role %q is not supported; use system, developer, user, assistant or tool", i, m.Role)
		}
	}
	if len(out.Messages) == 0 {
		return out, badParam("messages", "messages has no user message")
	}
	for _, p := range []struct {
		name string
		v    *float64
	}{{"presence_penalty", r.PresencePenalty}, {"frequency_penalty", r.FrequencyPenalty}} {
		if p.v != nil && (*p.v < -2 || *p.v > 2) {
			return out, badParam(p.name, "%s is %g; it must be within -2..2", p.name, *p.v)
		}
	}
	ic := &bus.InferenceConfig{Temperature: r.Temperature, TopP: r.TopP, Seed: r.Seed, PresencePenalty: r.PresencePenalty, FrequencyPenalty: r.FrequencyPenalty}
	switch {
	case r.MaxCompletionTokens != nil:
		if *r.MaxCompletionTokens < 1 {
			return out, badParam("max_completion_tokens", "max_completion_tokens is %d; it must be at least 1", *r.MaxCompletionTokens)
		}
		ic.MaxTokens = *r.MaxCompletionTokens
	case r.MaxTokens != nil:
		if *r.MaxTokens < 1 {
			return out, badParam("max_tokens", "max_tokens is %d; it must be at least 1", *r.MaxTokens)
		}
		ic.MaxTokens = *r.MaxTokens
	}
	if len(r.Stop) > 0 && string(r.Stop) != "null" {
		var one string
		if err := json.Unmarshal(r.Stop, &one); err == nil {
			ic.StopSequences = []string{one}
		} else if err := json.Unmarshal(r.Stop, &ic.StopSequences); err != nil {
			return out, badParam("stop", "stop must be a string or an array of strings")
		}
	}
	if ic.MaxTokens != 0 || ic.Temperature != nil || ic.TopP != nil || len(ic.StopSequences) > 0 ||
		ic.Seed != nil || ic.PresencePenalty != nil || ic.FrequencyPenalty != nil {
		out.InferenceConfig = ic
	}
	return out, nil
}

// toOpenAIParams gathers logit_bias, verbosity and the hints into the
// bus's OpenAIParams (nil when none is set) and checks them, naming the
// parameter or the logit_bias entry at fault.
func (r *oaChatRequest) toOpenAIParams() (*bus.OpenAIParams, *apiError) {
	p := &bus.OpenAIParams{Verbosity: r.Verbosity, User: r.User, SafetyIdentifier: r.SafetyIdentifier, PromptCacheKey: r.PromptCacheKey, ServiceTier: r.ServiceTier}
	if raw := bytes.TrimSpace(r.LogitBias); len(raw) > 0 && string(raw) != "null" {
		var entries map[string]json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil || entries == nil {
			return nil, badParam(bus.ParamLogitBias, "logit_bias must be an object of token ids to numbers, e.g. {\"50256\": -100}")
		}
		if n := len(entries); n > bus.MaxLogitBiasEntries {
			return nil, badParam(bus.ParamLogitBias, "logit_bias has %d entries, more than the limit of %d", n, bus.MaxLogitBiasEntries)
		}
		p.LogitBias = make(map[string]float64, len(entries))
		for _, k := range slices.Sorted(maps.Keys(entries)) {
			var f float64
			if v := bytes.TrimSpace(entries[k]); string(v) == "null" || json.Unmarshal(v, &f) != nil {
				name := fmt.Sprintf("%s[%q]", bus.ParamLogitBias, k)
				return nil, badParam(name, "%s must be a number within -%d..%d", name, bus.MaxLogitBias, bus.MaxLogitBias)
			}
			p.LogitBias[k] = f
		}
	}
	if err := p.Validate(); err != nil {
		return nil, badParam(err.Param(err.Field), "%s", err.Error())
	}
	if p.IsZero() {
		return nil, nil
	}
	return p, nil
}

// toOutputConfig translates response_format: text is no output config,
// json_object and json_schema become the bus's output formats.
func toOutputConfig(raw json.RawMessage) (*bus.OutputConfig, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, badParam("response_format", "response_format must be an object with a type: text, json_object or json_schema")
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case bus.OutputFormatJSONObject:
		return &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONObject}}, nil
	case bus.OutputFormatJSONSchema:
		js := rf.JSONSchema
		if js == nil || js.Name == "" {
			return nil, badParam("response_format.json_schema.name", "response_format.json_schema.name is required")
		}
		schema := bytes.TrimSpace(js.Schema)
		if len(schema) == 0 || schema[0] != '{' {
			return nil, badParam("response_format.json_schema.schema", "response_format.json_schema.schema must be a JSON Schema object")
		}
		return &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONSchema, Structure: &bus.OutputStructure{
			JSONSchema: &bus.JSONSchemaDefinition{Schema: string(schema), Name: js.Name, Description: js.Description, Strict: js.Strict},
		}}}, nil
	}
	return nil, badParam("response_format.type", "response_format.type %q is not supported; use text, json_object or json_schema", rf.Type)
}

// isEmptyContent reports whether content is absent, null or "".
func isEmptyContent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null" || string(raw) == `""`
}

// contentTexts reads a message's content that may hold only text: a
// string or an array of text parts. cached reports whether a part asked
// for a cache point (cache_control).
func contentTexts(raw json.RawMessage, i int) (texts []string, cached bool, aerr *apiError) {
	blocks, aerr := contentBlocks(raw, i, false)
	if aerr != nil {
		return nil, false, aerr
	}
	texts = make([]string, 0, len(blocks))
	for _, b := range blocks {
		if b.CachePoint != nil {
			cached = true
			continue
		}
		texts = append(texts, b.Text)
	}
	return texts, cached, nil
}

// contentBlocks reads a message's content: a string or an array of text
// parts and, when images is set, image_url parts. A part with a
// cache_control is followed by a cache point block.
func contentBlocks(raw json.RawMessage, i int, images bool) ([]bus.ContentBlock, *apiError) {
	raw = bytes.TrimSpace(raw)
	field := fmt.Sprintf("messages[%d].content", i)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badParam(field, "%s is missing", field)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badParam(field, "%s is not a valid string", field)
		}
		if strings.TrimSpace(s) == "" {
			return nil, badParam(field, "%s is empty", field)
		}
		return []bus.ContentBlock{{Text: s}}, nil
	}
	var parts []oaPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badParam(field, "%s must be a string or an array of content parts", field)
	}
	if len(parts) == 0 {
		return nil, badParam(field, "%s is empty", field)
	}
	blocks := make([]bus.ContentBlock, 0, len(parts))
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		switch {
		case p.Type == "text":
			if strings.TrimSpace(p.Text) == "" {
				return nil, badParam(pf+".text", "%s.text is empty", pf)
			}
			blocks = append(blocks, bus.ContentBlock{Text: p.Text})
		case p.Type == "image_url" && images:
			if p.ImageURL == nil {
				return nil, badParam(pf+".image_url", "%s.image_url is missing", pf)
			}
			img, aerr := dataURLImage(p.ImageURL.URL, pf+".image_url.url")
			if aerr != nil {
				return nil, aerr
			}
			blocks = append(blocks, bus.ContentBlock{Image: img})
		case p.Type == "image_url":
			return nil, badParam(pf+".type", "%s.type %q is only allowed in user messages", pf, p.Type)
		default:
			return nil, badParam(pf+".type", "%s.type %q is not supported; use text or image_url", pf, p.Type)
		}
		point, aerr := cachePoint(p.CacheControl, pf+".cache_control")
		if aerr != nil {
			return nil, aerr
		}
		if point != nil {
			blocks = append(blocks, bus.ContentBlock{CachePoint: point})
		}
	}
	return blocks, nil
}

// imageFormats maps the media types of data URLs to image formats.
var imageFormats = map[string]string{
	"image/png":  bus.ImagePNG,
	"image/jpeg": bus.ImageJPEG,
	"image/jpg":  bus.ImageJPEG,
	"image/gif":  bus.ImageGIF,
	"image/webp": bus.ImageWebP,
}

// dataURLImage decodes an image sent as a data URL
// (data:image/png;base64,...). An http(s) URL is passed on for providers
// that fetch images themselves: the gateway never fetches from an address
// a caller names (chat refuses it for models whose provider cannot).
func dataURLImage(url, field string) (*bus.ImageBlock, *apiError) {
	if strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://") {
		return &bus.ImageBlock{Source: bus.ImageSource{URL: url}}, nil
	}
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		return nil, badParam(field, "%s must be a data URL (data:image/png;base64,...) or an http(s) URL", field)
	}
	meta, payload, ok := strings.Cut(rest, ",")
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	format := imageFormats[strings.ToLower(mediaType)]
	switch {
	case !ok || !isBase64:
		return nil, badParam(field, "%s must be a base64 data URL: data:<media type>;base64,<data>", field)
	case format == "":
		return nil, badParam(field, "%s has media type %q; use image/png, image/jpeg, image/gif or image/webp", field, mediaType)
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(payload); err != nil {
			return nil, badParam(field, "%s does not hold valid base64 data", field)
		}
	}
	return &bus.ImageBlock{Format: format, Source: bus.ImageSource{Bytes: data}}, nil
}

// finishReason maps a stop reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "length"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	case "tool_use":
		return "tool_calls"
	}
	return "stop"
}

// oaUsage is OpenAI's usage object.
type oaUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

type oaDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
	// ReasoningContent is the model's reasoning, in the field DeepSeek,
	// vLLM and SGLang use (OpenAI's API has none).
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ThinkingBlocks carries each reasoning block whole once it ends, to
	// send back in a later turn (see [oaThinkingBlock]).
	ThinkingBlocks []oaThinkingBlock `json:"thinking_blocks,omitempty"`
	ToolCalls      []oaToolCallDelta `json:"tool_calls,omitempty"`
}

type oaChunkChoice struct {
	Index        int     `json:"index"`
	Delta        oaDelta `json:"delta"`
	Logprobs     *int    `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

// oaChunk is one chat.completion.chunk.
type oaChunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []oaChunkChoice `json:"choices"`
	Usage   *oaUsage        `json:"usage,omitempty"`
}

type oaMessage struct {
	Role string `json:"role"`
	// Content is null when the answer only calls tools.
	Content          *string `json:"content"`
	ReasoningContent string  `json:"reasoning_content,omitempty"`
	// ThinkingBlocks are the answer's signed or redacted reasoning blocks,
	// to send back in a later turn.
	ThinkingBlocks []oaThinkingBlock `json:"thinking_blocks,omitempty"`
	Refusal        *string           `json:"refusal"`
	ToolCalls      []oaToolCall      `json:"tool_calls,omitempty"`
}

type oaChoice struct {
	Index        int       `json:"index"`
	Message      oaMessage `json:"message"`
	Logprobs     *int      `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

// oaCompletion is a non-streamed chat.completion.
type oaCompletion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []oaChoice `json:"choices"`
	Usage   oaUsage    `json:"usage"`
}

// oaModel is one entry of GET /v1/models. Capabilities is Gatehouse's
// addition (OpenAI's model object has no such field), left out when chat
// does not say.
type oaModel struct {
	ID           string          `json:"id"`
	Object       string          `json:"object"`
	Created      int64           `json:"created"`
	OwnedBy      string          `json:"owned_by"`
	Capabilities *oaCapabilities `json:"capabilities,omitempty"`
}

// oaCapabilities says what a model can do besides text.
type oaCapabilities struct {
	Vision bool `json:"vision"`
	Tools  bool `json:"tools"`
}

// newOAModel is the GET /v1/models entry of a model of chat's catalog.
func newOAModel(m bus.ModelInfo) oaModel {
	om := oaModel{ID: m.ID, Object: "model", OwnedBy: m.Provider}
	if c := m.Capabilities; c != nil {
		om.Capabilities = &oaCapabilities{Vision: c.Vision, Tools: c.Tools}
	}
	return om
}
