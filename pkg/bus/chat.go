package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ChatRequest is what a client publishes to /Inbound-Messages/<own id>, in
// the shape of Bedrock's Converse API that the reference browser client
// sends. A request carrying only Stop asks chat to stop that request.
type ChatRequest struct {
	Messages        []Message        `json:"messages,omitempty"`
	ModelID         string           `json:"modelId,omitempty"`
	ConversationID  string           `json:"conversationId,omitempty"`
	System          []ContentBlock   `json:"system,omitempty"`
	InferenceConfig *InferenceConfig `json:"inferenceConfig,omitempty"`
	// ToolConfig offers the model tools it may call (Converse's
	// toolConfig). A request whose messages hold toolUse or toolResult
	// blocks must carry it, as Bedrock requires.
	ToolConfig *ToolConfig `json:"toolConfig,omitempty"`
	// OutputConfig asks for structured output (Converse's outputConfig).
	OutputConfig *OutputConfig `json:"outputConfig,omitempty"`
	// ReasoningEffort asks a reasoning model to think less or more (not a
	// Converse field; OpenAI's reasoning_effort): one of
	// [ReasoningEfforts], or "" for the model's default. Chat sends it to
	// OpenAI-compatible servers as reasoning_effort, or the request fields
	// the model's configuration maps it to, and refuses it for a model
	// that can honour it neither way.
	ReasoningEffort string `json:"reasoningEffort,omitempty"`
	// OpenAIParams carries OpenAI chat completion parameters that Converse
	// has no field for (not a Converse field; Gatehouse's): logit_bias and
	// verbosity, which change the answer, and the hints user,
	// safety_identifier, prompt_cache_key and service_tier. Chat passes
	// them on to OpenAI-compatible servers as they are; see
	// [OpenAIParams] for the rules and limits. Nil sets none.
	OpenAIParams *OpenAIParams `json:"openaiParams,omitempty"`
	// Stop, when set, is the request id of a generation to stop.
	Stop string `json:"stop,omitempty"`
}

// Message is one turn of a conversation.
type Message struct {
	Role    string         `json:"role"`
	Content []ContentBlock `json:"content"`
}

// ContentBlock is one piece of message content: exactly one of Text,
// Image (user messages), ToolUse (assistant messages: the model called a
// tool), ToolResult (user messages: what the tool returned),
// ReasoningContent (assistant messages: the model's earlier reasoning) and
// CachePoint (a prompt cache point after the blocks before it) is set.
type ContentBlock struct {
	Text       string           `json:"text,omitempty"`
	Image      *ImageBlock      `json:"image,omitempty"`
	ToolUse    *ToolUseBlock    `json:"toolUse,omitempty"`
	ToolResult *ToolResultBlock `json:"toolResult,omitempty"`
	// ReasoningContent is reasoning the model produced in an earlier turn,
	// sent back as it came (Converse's reasoningContent block). Claude with
	// extended thinking requires it, signature included, in the assistant
	// turn whose tool calls a request answers. Providers that take no
	// reasoning back (OpenAI-compatible servers) are not sent it.
	ReasoningContent *ReasoningBlock `json:"reasoningContent,omitempty"`
	// CachePoint marks the end of a prompt prefix the provider may cache
	// (Converse's cachePoint block), in a message's content or in the
	// system blocks. It is not content: it does not change the answer, is
	// not part of the cache key and counts no bytes. Bedrock gets it;
	// OpenAI-compatible servers, which cache prefixes by themselves, do
	// not.
	CachePoint *CachePoint `json:"cachePoint,omitempty"`
}

// CachePointDefault is the only [CachePoint] type (Converse's).
const CachePointDefault = "default"

// Cache lifetimes a [CachePoint] may ask for (Converse's CacheTTL).
const (
	CacheTTL5m = "5m"
	CacheTTL1h = "1h"
)

// CachePoint is a prompt cache point (Converse's CachePointBlock).
type CachePoint struct {
	// Type is [CachePointDefault].
	Type string `json:"type"`
	// TTL is how long the cache keeps the prefix: [CacheTTL5m],
	// [CacheTTL1h], or "" for the provider's default (5 minutes).
	// Anthropic's models charge more for 1-hour cache writes
	// (Price.CacheWrite1hInputPerMillion).
	TTL string `json:"ttl,omitempty"`
}

// ReasoningBlock is a model's reasoning from an earlier turn: its text with
// the signature that proves it unaltered, or the encrypted content of
// reasoning the provider redacted. Exactly one of the two is set.
type ReasoningBlock struct {
	ReasoningText *ReasoningText `json:"reasoningText,omitempty"`
	// RedactedContent is opaque (base64 in JSON).
	RedactedContent []byte `json:"redactedContent,omitempty"`
}

// ReasoningText is reasoning text and its signature, as the model streamed
// them (the text deltas joined, then the signature delta).
type ReasoningText struct {
	Text      string `json:"text"`
	Signature string `json:"signature,omitempty"`
}

// Bytes is the size the block adds to a request: its text, signature and
// redacted content.
func (r *ReasoningBlock) Bytes() int {
	n := len(r.RedactedContent)
	if t := r.ReasoningText; t != nil {
		n += len(t.Text) + len(t.Signature)
	}
	return n
}

// Image formats an [ImageBlock] may have (Converse's).
const (
	ImagePNG  = "png"
	ImageJPEG = "jpeg"
	ImageGIF  = "gif"
	ImageWebP = "webp"
)

// ImageBlock is an image the model reads, in Converse's shape: its format
// and its bytes (base64 in JSON), or the address the model's provider
// fetches it from.
type ImageBlock struct {
	// Format is required with Bytes; with URL it may be empty.
	Format string      `json:"format,omitempty"`
	Source ImageSource `json:"source"`
}

// ImageSource holds an image's bytes, or (not a Converse field) the http
// or https URL that providers which fetch images themselves read it from.
// Gatehouse never fetches it.
type ImageSource struct {
	Bytes []byte `json:"bytes,omitempty"`
	URL   string `json:"url,omitempty"`
}

// MediaType returns the image's MIME type, e.g. "image/png".
func (b *ImageBlock) MediaType() string { return "image/" + b.Format }

// ToolUseBlock is a call of a tool by the model.
type ToolUseBlock struct {
	ToolUseID string `json:"toolUseId"`
	Name      string `json:"name"`
	// Input is the tool's input, a JSON object.
	Input json.RawMessage `json:"input"`
}

// Tool result statuses.
const (
	ToolResultSuccess = "success"
	ToolResultError   = "error"
)

// ToolResultBlock is what a tool returned for the ToolUseBlock with the
// same ToolUseID.
type ToolResultBlock struct {
	ToolUseID string              `json:"toolUseId"`
	Content   []ToolResultContent `json:"content"`
	// Status is ToolResultSuccess, ToolResultError or empty (success).
	Status string `json:"status,omitempty"`
}

// ToolResultContent is one piece of a tool result: Text or JSON.
type ToolResultContent struct {
	Text string          `json:"text,omitempty"`
	JSON json.RawMessage `json:"json,omitempty"`
}

// ToolConfig is the tools a request offers and how the model may choose.
type ToolConfig struct {
	Tools      []Tool      `json:"tools"`
	ToolChoice *ToolChoice `json:"toolChoice,omitempty"`
	// ParallelToolCalls, when false, asks the model to call at most one
	// tool per turn (OpenAI's parallel_tool_calls; not a Converse field).
	// OpenAI-compatible servers get it; Converse has no such setting, so
	// Bedrock models may still call several.
	ParallelToolCalls *bool `json:"parallelToolCalls,omitempty"`
}

// Tool is one entry of the tools a request offers, Converse's union:
// exactly one of ToolSpec (a tool the model may call) and CachePoint (a
// prompt cache point after the tools before it; see
// [ContentBlock.CachePoint]) is set.
type Tool struct {
	ToolSpec   *ToolSpec   `json:"toolSpec,omitempty"`
	CachePoint *CachePoint `json:"cachePoint,omitempty"`
}

// ToolSpec describes a tool: its name, what it does and its input's JSON
// Schema.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema ToolInputSchema `json:"inputSchema"`
}

// ToolInputSchema holds a tool's input JSON Schema (an object).
type ToolInputSchema struct {
	JSON json.RawMessage `json:"json"`
}

// ToolChoice says whether and which tool the model must call: exactly one
// field is set. Auto lets it choose, Any makes it call some tool, Tool
// makes it call the named one. None (not a Converse choice; OpenAI's
// "none") asks it to call no tool: providers that cannot forbid calls send
// no tools when the conversation has no tool blocks.
type ToolChoice struct {
	Auto *struct{}     `json:"auto,omitempty"`
	Any  *struct{}     `json:"any,omitempty"`
	Tool *SpecificTool `json:"tool,omitempty"`
	None *struct{}     `json:"none,omitempty"`
}

// SpecificTool names the tool a [ToolChoice] requires.
type SpecificTool struct {
	Name string `json:"name"`
}

// Reasoning efforts a [ChatRequest] may ask for (OpenAI's
// reasoning_effort values), from none to the most.
const (
	ReasoningEffortNone    = "none"
	ReasoningEffortMinimal = "minimal"
	ReasoningEffortLow     = "low"
	ReasoningEffortMedium  = "medium"
	ReasoningEffortHigh    = "high"
	ReasoningEffortXHigh   = "xhigh"
	ReasoningEffortMax     = "max"
)

// ReasoningEfforts lists the accepted [ChatRequest.ReasoningEffort]
// values, from none to the most.
var ReasoningEfforts = []string{
	ReasoningEffortNone, ReasoningEffortMinimal, ReasoningEffortLow,
	ReasoningEffortMedium, ReasoningEffortHigh, ReasoningEffortXHigh,
	ReasoningEffortMax,
}

// ValidReasoningEffort reports whether s is one of [ReasoningEfforts] ("" is
// not).
func ValidReasoningEffort(s string) bool {
	switch s {
	case ReasoningEffortNone, ReasoningEffortMinimal, ReasoningEffortLow,
		ReasoningEffortMedium, ReasoningEffortHigh, ReasoningEffortXHigh,
		ReasoningEffortMax:
		return true
	}
	return false
}

// Output format types of an [OutputFormat].
const (
	// OutputFormatJSONSchema is Converse's json_schema: the answer is JSON
	// valid against Structure.JSONSchema.Schema.
	OutputFormatJSONSchema = "json_schema"
	// OutputFormatJSONObject is OpenAI's JSON mode (not a Converse type):
	// the answer is a JSON object. Providers without it refuse it.
	OutputFormatJSONObject = "json_object"
)

// OutputConfig configures the form of the answer.
type OutputConfig struct {
	TextFormat *OutputFormat `json:"textFormat,omitempty"`
}

// OutputFormat is the structured output the answer's text must follow.
type OutputFormat struct {
	// Type is OutputFormatJSONSchema or OutputFormatJSONObject.
	Type      string           `json:"type"`
	Structure *OutputStructure `json:"structure,omitempty"`
}

// OutputStructure holds the schema of a json_schema [OutputFormat].
type OutputStructure struct {
	JSONSchema *JSONSchemaDefinition `json:"jsonSchema,omitempty"`
}

// JSONSchemaDefinition is a named JSON Schema. Schema is the schema's JSON
// text, as Converse carries it (a string, not an object).
type JSONSchemaDefinition struct {
	Schema      string `json:"schema"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Strict is OpenAI's strict flag (not a Converse field): passed to
	// OpenAI-compatible providers, which enforce the schema exactly when
	// it is true.
	Strict *bool `json:"strict,omitempty"`
}

// HasToolBlocks reports whether any message holds a toolUse or toolResult
// block.
func (r *ChatRequest) HasToolBlocks() bool {
	for _, m := range r.Messages {
		if m.HasToolBlocks() {
			return true
		}
	}
	return false
}

// HasToolBlocks reports whether the message holds a toolUse or toolResult
// block.
func (m Message) HasToolBlocks() bool {
	for _, b := range m.Content {
		if b.ToolUse != nil || b.ToolResult != nil {
			return true
		}
	}
	return false
}

// InferenceConfig carries generation parameters (Bedrock's names).
type InferenceConfig struct {
	MaxTokens     int      `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
	// Seed, PresencePenalty and FrequencyPenalty are OpenAI's sampling
	// parameters (not Converse's): OpenAI-compatible providers get them,
	// Bedrock, which has no such parameters, does not.
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequencyPenalty,omitempty"`
}

// ErrBadRequest wraps every decoding failure of a chat request.
var ErrBadRequest = errors.New("bus: bad chat request")

// maxUnwrap is how many layers of JSON-string encoding are peeled off: the
// reference UI publishes JSON.stringify(payload), which the Events client
// stringifies once more.
const maxUnwrap = 3

// DecodeChatRequest parses a published event. It accepts the object itself
// or a JSON string containing it (up to [maxUnwrap] levels deep). Fields it
// does not know are ignored (Converse has many); fields of the wrong type are
// rejected with an error naming them. Semantic validation is chat's.
func DecodeChatRequest(data []byte) (ChatRequest, error) {
	raw := json.RawMessage(data)
	for i := 0; ; i++ {
		trimmed := strings.TrimSpace(string(raw))
		if !strings.HasPrefix(trimmed, `"`) {
			break
		}
		if i == maxUnwrap {
			return ChatRequest{}, fmt.Errorf("%w: event is nested in JSON strings more than %d levels deep", ErrBadRequest, maxUnwrap)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ChatRequest{}, fmt.Errorf("%w: event is not valid JSON: %v", ErrBadRequest, err)
		}
		raw = json.RawMessage(s)
	}
	var req ChatRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return ChatRequest{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return req, nil
}

// Outbound event error types. They are stable: clients branch on them.
const (
	ErrTypeQuotaExceeded       = "quota_exceeded"
	ErrTypeModelNotFound       = "model_not_found"
	ErrTypeValidation          = "validation_error"
	ErrTypeUpstreamThrottled   = "upstream_throttled"
	ErrTypeUpstreamError       = "upstream_error"
	ErrTypeGuardrailIntervened = "guardrail_intervened"
	ErrTypeInternal            = "internal_error"
	ErrTypeCancelled           = "cancelled"
)

// Event is one outbound event of a chat answer, in the shape of Bedrock's
// ConverseStream events that the reference browser client renders. Exactly
// one of the pointer fields is set; RequestID, Seq and ConversationID are
// set on every event.
type Event struct {
	MessageStart      *MessageStart      `json:"messageStart,omitempty"`
	ContentBlockStart *ContentBlockStart `json:"contentBlockStart,omitempty"`
	ContentBlockDelta *ContentBlockDelta `json:"contentBlockDelta,omitempty"`
	ContentBlockStop  *ContentBlockStop  `json:"contentBlockStop,omitempty"`
	MessageStop       *MessageStop       `json:"messageStop,omitempty"`
	Metadata          *Metadata          `json:"metadata,omitempty"`
	TokenUsage        *TokenUsage        `json:"tokenUsage,omitempty"`
	Error             *ErrorEvent        `json:"error,omitempty"`

	ConversationID string `json:"conversationId,omitempty"`
	RequestID      string `json:"requestId"`
	Seq            int    `json:"seq"`
}

// MessageStart opens an answer.
type MessageStart struct {
	Role string `json:"role"`
}

// ContentBlockStart opens a content block that is not text: the model
// calls a tool. Text blocks need no start event.
type ContentBlockStart struct {
	Start             BlockStart `json:"start"`
	ContentBlockIndex int        `json:"contentBlockIndex"`
}

// BlockStart says what kind of block a [ContentBlockStart] opens.
type BlockStart struct {
	ToolUse *ToolUseStart `json:"toolUse,omitempty"`
}

// ToolUseStart names the tool called and the id its result must carry.
type ToolUseStart struct {
	ToolUseID string `json:"toolUseId"`
	Name      string `json:"name"`
}

// ContentBlockDelta carries generated text or a piece of a tool's input.
type ContentBlockDelta struct {
	Delta             Delta `json:"delta"`
	ContentBlockIndex int   `json:"contentBlockIndex"`
}

// Delta is the content of a [ContentBlockDelta]: Text, ToolUse for a
// tool-use block, or ReasoningContent. text is always written (empty in a tool input delta), so
// a client that only appends delta.text renders tool calls as nothing
// rather than as "undefined".
type Delta struct {
	Text    string        `json:"text"`
	ToolUse *ToolUseDelta `json:"toolUse,omitempty"`
	// ReasoningContent is a piece of the model's reasoning (Converse's
	// reasoningContent), streamed before or between its answer's text.
	ReasoningContent *ReasoningDelta `json:"reasoningContent,omitempty"`
}

// ReasoningDelta is a piece of a model's reasoning: text, or, once a
// reasoning block's text is complete, its signature; or the encrypted
// content of reasoning the provider redacted. A client that sends the
// reasoning back in a later turn (see [ReasoningBlock]) joins a block's
// texts and keeps its signature. text is always written, as in [Delta].
type ReasoningDelta struct {
	Text            string `json:"text"`
	Signature       string `json:"signature,omitempty"`
	RedactedContent []byte `json:"redactedContent,omitempty"`
}

// ToolUseDelta is a piece of a tool's input JSON, as the model writes it;
// the pieces of one block joined are the input.
type ToolUseDelta struct {
	Input string `json:"input"`
}

// ContentBlockStop closes a content block.
type ContentBlockStop struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
}

// MessageStop closes an answer.
type MessageStop struct {
	StopReason string `json:"stopReason"`
}

// Metadata is the final event: usage and timing.
type Metadata struct {
	Usage   Usage   `json:"usage"`
	Metrics Metrics `json:"metrics"`
}

// Usage counts tokens.
type Usage struct {
	InputTokens  int64 `json:"inputTokens"`
	OutputTokens int64 `json:"outputTokens"`
	TotalTokens  int64 `json:"totalTokens"`
	// Estimated is true when the provider reported no usage and Gatehouse
	// counted it.
	Estimated bool `json:"estimated,omitempty"`
	// Cached is true when the answer came from the cache.
	Cached bool `json:"cached,omitempty"`
}

// Metrics carries timing of the answer.
type Metrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

// TokenUsage is the caller's quota state, sent with the final event: this
// request's usage and, for each limited window, what is used and allowed.
type TokenUsage struct {
	Request Usage         `json:"request"`
	Windows []QuotaWindow `json:"windows"`
}

// QuotaWindow is the state of one limit.
type QuotaWindow struct {
	Scope     string `json:"scope"`  // "user", "tenant" or "key"
	Window    string `json:"window"` // "rolling24h", "day", "month", "minute"
	Metric    string `json:"metric"` // "inputTokens", "outputTokens", "totalTokens", "requests", "spendMicroUSD"
	Used      int64  `json:"used"`
	Limit     int64  `json:"limit"`
	ResetsAt  string `json:"resetsAt,omitempty"` // RFC 3339
	Remaining int64  `json:"remaining"`
}

// ErrorEvent is a failure the client can act on.
type ErrorEvent struct {
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	RequestID string         `json:"requestId"`
	Details   map[string]any `json:"details,omitempty"`
}
