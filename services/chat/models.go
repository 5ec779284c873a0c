package chat

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// Provider names a [Model.Provider] may take.
const (
	// ProviderEcho answers with the last user message, word by word. It is
	// always available and needs no [ProviderConfig].
	ProviderEcho = provider.EchoName
)

// MaxFallbacks bounds [Model.Fallbacks].
const MaxFallbacks = 8

// Model is one entry of the model catalog.
type Model struct {
	// ID is the canonical model id: what clients send as modelId, what the
	// ledger records and what cache keys contain.
	ID string
	// Aliases are other names clients may use for the model.
	Aliases []string
	// Provider names the provider that serves the model: [ProviderEcho] or
	// the Name of one of [Config.Providers].
	Provider string
	// UpstreamModel is the provider's id for the model (a Bedrock model or
	// inference profile id, an OpenAI model name); "" means ID.
	UpstreamModel string
	// DefaultMaxTokens is the output bound of a request that sets no
	// inferenceConfig.maxTokens.
	DefaultMaxTokens int
	// MaxTokens is the largest inferenceConfig.maxTokens accepted.
	MaxTokens int
	// ContextWindow is the model's context window in tokens; a request
	// whose estimated input plus maxTokens exceeds it is refused. 0 means
	// unchecked.
	ContextWindow int
	// Price is what the model costs; zero means free.
	Price Price
	// Guardrail, when set, is applied to every call (Bedrock only).
	Guardrail *Guardrail
	// Fallbacks are model ids tried in order when this model is throttled,
	// failing (5xx) or times out before its first token, after
	// [Config.RetryAttempts] attempts. At most [MaxFallbacks].
	Fallbacks []string
	// RequestFields, a JSON object, is added to every upstream request of
	// the model: Bedrock's additionalModelRequestFields (e.g. Claude's
	// {"thinking":{"type":"enabled","budget_tokens":2048}} or {"top_k":50}),
	// or top-level fields of an OpenAI-compatible request (e.g. vLLM's
	// {"top_k":20,"chat_template_kwargs":{"enable_thinking":false}}), which
	// may not name a field Gatehouse sets ([OpenAIReservedFields]). Echo
	// takes none.
	RequestFields json.RawMessage
	// ReasoningEffort maps reasoning efforts a request may ask for (keys
	// are bus.ReasoningEffort* values) to a JSON object of request fields
	// sent with that effort, merged over RequestFields by top-level key
	// (the effort's value wins): e.g. for Claude on Bedrock
	// {"high":{"thinking":{"type":"enabled","budget_tokens":16384}}}. For
	// an OpenAI-compatible server a mapping replaces the reasoning_effort
	// Gatehouse otherwise sends, and may itself set reasoning_effort (but
	// no other of [OpenAIReservedFields]). A Bedrock model is refused an
	// effort it has no mapping for, except "none". Echo takes none.
	ReasoningEffort map[string]json.RawMessage
	// NoVision says the model does not read images: a request holding an
	// image block is refused naming the model, and as a fallback the model
	// is skipped for such a request. The zero value reads images (echo
	// ignores them).
	NoVision bool
	// NoTools says the model does not call tools: a request offering tools
	// (toolConfig) or holding toolUse or toolResult blocks is refused
	// naming the model, and as a fallback the model is skipped for such a
	// request. The zero value calls tools (echo takes them and calls none).
	NoTools bool
}

// OpenAIReservedFields are the request fields Gatehouse sets itself in an
// OpenAI-compatible request; a model's RequestFields may not name them,
// nor its ReasoningEffort mappings, which may set reasoning_effort only.
var OpenAIReservedFields = []string{
	"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
	"presence_penalty", "frequency_penalty", "tools", "tool_choice", "parallel_tool_calls", "response_format",
	"stream", "stream_options", "reasoning_effort",
	// A request's openaiParams.
	"logit_bias", "verbosity", "user", "safety_identifier", "prompt_cache_key", "service_tier",
}

// checkRequestFields validates a model's RequestFields for its provider
// type ("" for echo).
func checkRequestFields(raw json.RawMessage, providerType, field string) error {
	if len(raw) == 0 {
		return nil
	}
	_, err := requestFields(raw, providerType, field+".RequestFields", "")
	return err
}

// requestFields decodes request fields named name (for errors) for a
// provider type ("" for echo): a JSON object, none for echo, and for an
// OpenAI-compatible server no field of [OpenAIReservedFields] but allowed.
func requestFields(raw json.RawMessage, providerType, name, allowed string) (map[string]json.RawMessage, error) {
	if providerType == "" {
		return nil, fmt.Errorf("%w: %s is set, but echo takes no request fields", ErrInvalidConfig, name)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrInvalidConfig, name)
	}
	if providerType == ProviderTypeOpenAI {
		for _, k := range OpenAIReservedFields {
			if _, ok := fields[k]; ok && k != allowed {
				return nil, fmt.Errorf("%w: %s sets %q, which Gatehouse sets itself from the request", ErrInvalidConfig, name, k)
			}
		}
	}
	return fields, nil
}

// Price is a model's price in USD per million tokens (which is the same
// number as micro-USD per token).
type Price struct {
	// InputPerMillion prices input tokens not served from a prompt cache.
	InputPerMillion float64
	// OutputPerMillion prices output tokens.
	OutputPerMillion float64
	// CachedInputPerMillion prices input tokens served from the upstream's
	// prompt cache; 0 means InputPerMillion.
	CachedInputPerMillion float64
	// CacheWriteInputPerMillion prices input tokens written to the
	// upstream's prompt cache (Bedrock reports them; Anthropic's models
	// charge 1.25 times the input price for 5-minute cache writes); 0
	// means InputPerMillion.
	CacheWriteInputPerMillion float64
	// CacheWrite1hInputPerMillion prices input tokens written to the
	// prompt cache for an hour (a cache point with TTL "1h"; Anthropic's
	// models charge twice the input price); 0 means
	// CacheWriteInputPerMillion.
	CacheWrite1hInputPerMillion float64
}

// CostMicroUSD prices usage, rounding up to a whole micro-USD. cached
// counts the input tokens (included in input) read from a prompt cache,
// cacheWrite those (also included in input) written to it, and
// cacheWrite1h the part of cacheWrite written for an hour; each is clamped
// to the tokens not already priced.
func (p Price) CostMicroUSD(input, cached, cacheWrite, cacheWrite1h, output int64) int64 {
	cachedPrice := p.CachedInputPerMillion
	if cachedPrice == 0 {
		cachedPrice = p.InputPerMillion
	}
	writePrice := p.CacheWriteInputPerMillion
	if writePrice == 0 {
		writePrice = p.InputPerMillion
	}
	write1hPrice := p.CacheWrite1hInputPerMillion
	if write1hPrice == 0 {
		write1hPrice = writePrice
	}
	input = max(input, 0)
	cached = min(max(cached, 0), input)
	cacheWrite = min(max(cacheWrite, 0), input-cached)
	cacheWrite1h = min(max(cacheWrite1h, 0), cacheWrite)
	c := float64(input-cached-cacheWrite)*p.InputPerMillion + float64(cached)*cachedPrice +
		float64(cacheWrite-cacheWrite1h)*writePrice + float64(cacheWrite1h)*write1hPrice + float64(output)*p.OutputPerMillion
	if c >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Ceil(c))
}

// Guardrail is a Bedrock guardrail configuration passed through with every
// call of a model.
type Guardrail struct {
	// ID is the guardrail identifier or ARN.
	ID string
	// Version is the guardrail version: "DRAFT" or a number.
	Version string
	// Trace is "enabled" or "disabled" ("" is Bedrock's default).
	Trace string
	// StreamProcessingMode is "sync" or "async" ("" is Bedrock's default).
	StreamProcessingMode string
}

// DefaultModels returns the catalog used when [Config.Models] is nil: the
// echo model (alias "gatehouse-echo").
func DefaultModels() []Model {
	return []Model{{
		ID:               "echo",
		Aliases:          []string{"gatehouse-echo"},
		Provider:         ProviderEcho,
		DefaultMaxTokens: 1024,
		MaxTokens:        8192,
	}}
}

// catalog resolves model ids and aliases. It is read-only after
// construction and safe for concurrent use.
type catalog struct {
	byName map[string]*Model
	models []*Model // in configuration order
	// efforts holds, for each model with ReasoningEffort mappings, the
	// request fields of each mapped effort: its RequestFields merged with
	// the mapping.
	efforts map[*Model]map[string]json.RawMessage
}

// newCatalog indexes models by id and alias, rejecting duplicates, unknown
// providers and fallbacks, and bad limits or prices. providers holds the
// types of the configured providers by name.
func newCatalog(models []Model, providers map[string]string) (catalog, error) {
	c := catalog{byName: make(map[string]*Model, len(models))}
	for i := range models {
		m := &models[i]
		field := fmt.Sprintf("Models[%d]", i)
		switch {
		case m.ID == "":
			return c, fmt.Errorf("%w: %s.ID is empty", ErrInvalidConfig, field)
		case m.Provider != ProviderEcho && providers[m.Provider] == "":
			return c, fmt.Errorf("%w: %s.Provider %q is not %q nor the name of a configured provider", ErrInvalidConfig, field, m.Provider, ProviderEcho)
		case m.MaxTokens < 1:
			return c, fmt.Errorf("%w: %s.MaxTokens %d must be at least 1", ErrInvalidConfig, field, m.MaxTokens)
		case m.DefaultMaxTokens < 1 || m.DefaultMaxTokens > m.MaxTokens:
			return c, fmt.Errorf("%w: %s.DefaultMaxTokens %d must be within 1..MaxTokens (%d)", ErrInvalidConfig, field, m.DefaultMaxTokens, m.MaxTokens)
		case m.ContextWindow < 0:
			return c, fmt.Errorf("%w: %s.ContextWindow %d is negative", ErrInvalidConfig, field, m.ContextWindow)
		case m.ContextWindow > 0 && m.MaxTokens > m.ContextWindow:
			return c, fmt.Errorf("%w: %s.MaxTokens %d exceeds ContextWindow %d", ErrInvalidConfig, field, m.MaxTokens, m.ContextWindow)
		case m.Price.InputPerMillion < 0 || m.Price.OutputPerMillion < 0 || m.Price.CachedInputPerMillion < 0 || m.Price.CacheWriteInputPerMillion < 0 || m.Price.CacheWrite1hInputPerMillion < 0:
			return c, fmt.Errorf("%w: %s.Price has a negative price", ErrInvalidConfig, field)
		case len(m.Fallbacks) > MaxFallbacks:
			return c, fmt.Errorf("%w: %s.Fallbacks has %d entries, more than the limit of %d", ErrInvalidConfig, field, len(m.Fallbacks), MaxFallbacks)
		case m.Guardrail != nil && (m.Guardrail.ID == "" || m.Guardrail.Version == ""):
			return c, fmt.Errorf("%w: %s.Guardrail needs ID and Version", ErrInvalidConfig, field)
		}
		if err := checkRequestFields(m.RequestFields, providers[m.Provider], field); err != nil {
			return c, err
		}
		efforts, err := effortFields(m, providers[m.Provider], field)
		if err != nil {
			return c, err
		}
		if efforts != nil {
			if c.efforts == nil {
				c.efforts = make(map[*Model]map[string]json.RawMessage)
			}
			c.efforts[m] = efforts
		}
		for _, name := range append([]string{m.ID}, m.Aliases...) {
			if name == "" {
				return c, fmt.Errorf("%w: %s has an empty alias", ErrInvalidConfig, field)
			}
			if _, dup := c.byName[name]; dup {
				return c, fmt.Errorf("%w: %s: model name %q is used twice", ErrInvalidConfig, field, name)
			}
			c.byName[name] = m
		}
		c.models = append(c.models, m)
	}
	if len(c.models) == 0 {
		return c, fmt.Errorf("%w: Models is empty", ErrInvalidConfig)
	}
	for i, m := range c.models {
		for j, fb := range m.Fallbacks {
			target, ok := c.byName[fb]
			switch {
			case !ok:
				return c, fmt.Errorf("%w: Models[%d].Fallbacks[%d] %q is not a model in the catalog", ErrInvalidConfig, i, j, fb)
			case target == m:
				return c, fmt.Errorf("%w: Models[%d].Fallbacks[%d] %q is the model itself", ErrInvalidConfig, i, j, fb)
			}
		}
	}
	return c, nil
}

// lookup resolves an id or alias.
func (c catalog) lookup(name string) (*Model, bool) {
	m, ok := c.byName[name]
	return m, ok
}

// chain returns m followed by its fallbacks, each model once.
func (c catalog) chain(m *Model) []*Model {
	out := []*Model{m}
	for _, fb := range m.Fallbacks {
		t := c.byName[fb]
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}
