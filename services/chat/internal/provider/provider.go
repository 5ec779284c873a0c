package provider

import (
	"context"
	"encoding/json"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Stop reasons a provider reports, in Bedrock's vocabulary.
const (
	StopEndTurn       = "end_turn"
	StopMaxTokens     = "max_tokens"
	StopSequence      = "stop_sequence"
	StopGuardrail     = "guardrail_intervened"
	StopContentFilter = "content_filtered"
	// StopToolUse ends an answer that calls tools: the caller runs them
	// and sends their results in the next request.
	StopToolUse = "tool_use"
	// StopCancelled is set by chat, never by a provider, when the request
	// was cancelled.
	StopCancelled = "cancelled"
)

// Call is one model invocation: the validated request, resolved to the
// provider's model id.
type Call struct {
	// Model is the provider's id for the model.
	Model string
	// System holds the system prompt blocks: texts and cache points
	// (validated by chat: each sets Text or CachePoint).
	System []bus.ContentBlock
	// Messages is the conversation, ending with a user message.
	Messages []bus.Message
	// MaxTokens bounds the output; always >= 1.
	MaxTokens int
	// Temperature, TopP and StopSequences are passed through when set.
	Temperature   *float64
	TopP          *float64
	StopSequences []string
	// Seed, PresencePenalty and FrequencyPenalty are passed to
	// OpenAI-compatible servers; Bedrock has no such parameters.
	Seed             *int64
	PresencePenalty  *float64
	FrequencyPenalty *float64
	// Tools, when set, offers the model tools (validated by chat: names
	// unique, schemas and inputs JSON objects, a choice naming a tool
	// that exists).
	Tools *bus.ToolConfig
	// Output, when set, is the structured output the answer must follow
	// (chat sends a provider only types [SupportsOutput] accepts).
	Output *bus.OutputFormat
	// RequestFields, a JSON object set by the model's configuration, is
	// added to the upstream request: Bedrock's
	// additionalModelRequestFields, or top-level fields of an
	// OpenAI-compatible request (chat checks they name no field the
	// provider sets).
	RequestFields json.RawMessage
	// ReasoningEffort is the reasoning effort the caller asked for (a
	// bus.ReasoningEffort* value), or "" for the model's default.
	ReasoningEffort string
	// ReasoningMapped says chat merged the model's request fields for
	// ReasoningEffort into RequestFields: the provider sends nothing more
	// for it. Otherwise OpenAI-compatible servers get ReasoningEffort as
	// reasoning_effort, echo ignores it, and Bedrock, which has no such
	// parameter, takes only "none", which asks for nothing (chat sends
	// providers only what [TakesReasoningEffort] accepts).
	ReasoningMapped bool
	// OpenAI, when set, holds OpenAI parameters without a Converse
	// equivalent, which OpenAI-compatible servers get as they are. Echo
	// and Bedrock ignore them (chat sends providers logit_bias and
	// verbosity only where [TakesOpenAIParam] says so).
	OpenAI *bus.OpenAIParams
	// Guardrail, when set, is applied by providers that support it
	// (Bedrock).
	Guardrail *Guardrail
}

// Guardrail is a Bedrock guardrail applied to a call.
type Guardrail struct {
	// ID is the guardrail identifier or ARN.
	ID string
	// Version is the guardrail version ("DRAFT" or a number).
	Version string
	// Trace enables the guardrail trace ("enabled" or "disabled").
	Trace string
	// StreamProcessingMode is "sync" or "async" ("" is Bedrock's default).
	StreamProcessingMode string
}

// Result is what a stream produced. It is meaningful on error and
// cancellation too: Usage then counts what was produced before the end.
type Result struct {
	// StopReason is a Stop* value after a clean end.
	StopReason string
	// CachedInputTokens counts the input tokens served from the upstream's
	// prompt cache (included in Usage.InputTokens), priced separately.
	CachedInputTokens int64
	// CacheWriteInputTokens counts the input tokens written to the
	// upstream's prompt cache (included in Usage.InputTokens), priced
	// separately (Bedrock reports them; OpenAI does not charge for them).
	CacheWriteInputTokens int64
	// CacheWrite1hInputTokens is the part of CacheWriteInputTokens written
	// for an hour (Bedrock's cacheDetails), priced apart.
	CacheWrite1hInputTokens int64
	// Usage counts tokens; Estimated is set when the provider did not
	// report them.
	Usage bus.Usage
}

// Delta is one piece of a streamed answer: generated text, the start of a
// tool-use block, a piece of a tool's input JSON, or reasoning. Exactly one
// of Text, ToolUse, ToolInput, Reasoning, ReasoningSignature and
// ReasoningRedacted is set.
type Delta struct {
	// Index is the content block the piece belongs to. Text is block 0
	// unless the provider numbers blocks itself (Bedrock).
	Index int
	// Text is generated text.
	Text string
	// ToolUse opens a tool-use block at Index: the model calls a tool.
	ToolUse *bus.ToolUseStart
	// ToolInput is the next piece of the input JSON of the tool-use block
	// at Index.
	ToolInput string
	// Reasoning is a piece of the model's reasoning (Bedrock's
	// reasoningContent, OpenAI-compatible servers' reasoning_content or
	// reasoning), not part of the answer's text.
	Reasoning string
	// ReasoningSignature ends the reasoning block at Index: the signature
	// a later turn sends back with the block's text (Bedrock).
	ReasoningSignature string
	// ReasoningRedacted is the encrypted content of reasoning the provider
	// redacted, a block of its own at Index (Bedrock).
	ReasoningRedacted []byte
}

// Provider streams model answers. Implementations are safe for concurrent
// use by many requests.
type Provider interface {
	// Name returns the catalog name of the provider, e.g. "echo".
	Name() string
	// InputTokens returns the input token count of call, or an estimate
	// when the provider cannot count exactly (the bool reports which).
	InputTokens(call *Call) (n int64, exact bool)
	// Stream runs call, invoking emit for each piece of the answer in
	// order (a tool-use block's start before its input). It
	// returns when the answer ends, emit fails, or ctx ends; in the last
	// case the error wraps ctx.Err(). The Result is filled in every case.
	Stream(ctx context.Context, call *Call, emit func(Delta) error) (Result, error)
}
