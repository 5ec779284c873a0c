package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Chat configures the chat workers and the model catalog.
type Chat struct {
	// Concurrency is how many requests one replica handles at once. Default 32.
	Concurrency int `yaml:"concurrency"`
	// EchoDelay paces the echo model's chunks. Default 0 (as fast as possible);
	// `gatehouse dev` uses 30ms so streaming is visible.
	EchoDelay time.Duration `yaml:"echo_delay"`
	// Providers are the upstreams models may name besides the built-in
	// "echo".
	Providers []ChatProvider `yaml:"providers"`
	// Models is the model catalog. Empty means the echo model only; when
	// set it replaces that default (list echo yourself to keep it).
	Models []ChatModel `yaml:"models"`
	// RetryAttempts is how many times one model is called when it is
	// throttled, failing or slow before its first token, before its next
	// fallback. 0 means the chat default (2).
	RetryAttempts int `yaml:"retry_attempts"`
	// RetryBackoff is the first pause between attempts, doubling up to 5s.
	// 0 means 200ms.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// FirstTokenTimeout bounds the wait for a model's first token. 0 means 60s.
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	// AuthzTimeout bounds asking authz whether the caller may use the model
	// (chat fails closed when it expires). 0 means 1s.
	AuthzTimeout time.Duration `yaml:"authz_timeout"`
	// CacheIndexMaxKeys bounds each replica's index of the response cache's
	// keys (about 36 bytes per key), which answers a lookup of a prompt
	// never stored as a miss without asking the cache service (one bus round
	// trip less before the first token). When the cache holds more keys,
	// every lookup asks the cache service. 0 means 1,048,576 (about 36 MiB
	// when full); -1 turns the index off; at most 67,108,864.
	CacheIndexMaxKeys int `yaml:"cache_index_max_keys"`
	// MaxMessages bounds the messages of one request. 0 means 200.
	MaxMessages int `yaml:"max_messages"`
	// MaxInputBytes bounds one request's input: system and message text,
	// tool inputs and results, and tool specifications. 0 means 524288
	// (512 KiB).
	MaxInputBytes int `yaml:"max_input_bytes"`
	// MaxOutputTokens caps every request's output tokens on top of each
	// model's max_tokens. 0 means each model's max_tokens.
	MaxOutputTokens int `yaml:"max_output_tokens"`
}

// ChatProvider is one upstream.
type ChatProvider struct {
	// Name is what models refer to; recorded in the ledger.
	Name string `yaml:"name"`
	// Type is "bedrock" (Amazon Bedrock ConverseStream, standard AWS
	// credential chain) or "openai" (any OpenAI-compatible server).
	Type string `yaml:"type"`
	// BaseURL is the openai API root (required, e.g.
	// http://localhost:11434/v1) or a bedrock endpoint override.
	BaseURL string `yaml:"base_url"`
	// APIKey is the openai bearer key. Secret: masked when the
	// configuration is printed.
	APIKey string `yaml:"api_key"`
	// Region is the bedrock region; empty uses AWS_REGION or the profile.
	Region string `yaml:"region"`
	// MaxConcurrent bounds calls in flight to this provider per replica.
	// 0 means 64.
	MaxConcurrent int `yaml:"max_concurrent"`
	// ImageURLs lets callers send an openai provider images by http(s)
	// URL for the server to fetch. Off by default: a self-hosted server
	// fetching addresses a caller names can reach your internal network;
	// turn it on for servers such as api.openai.com.
	ImageURLs bool `yaml:"image_urls"`
}

// MarshalYAML masks APIKey, so that `gatehouse config` never prints it.
func (p ChatProvider) MarshalYAML() (any, error) {
	type plain ChatProvider // without this method
	if p.APIKey != "" {
		p.APIKey = "****"
	}
	return plain(p), nil
}

// ChatModel is one catalog entry.
type ChatModel struct {
	// ID is the model id clients send and the ledger records.
	ID string `yaml:"id"`
	// Aliases are other accepted names.
	Aliases []string `yaml:"aliases"`
	// Provider is "echo" or the name of one of chat.providers.
	Provider string `yaml:"provider"`
	// UpstreamModel is the provider's model id; empty means ID.
	UpstreamModel string `yaml:"upstream_model"`
	// DefaultMaxTokens bounds the output of a request that sets none.
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// MaxTokens is the largest output a request may ask for.
	MaxTokens int `yaml:"max_tokens"`
	// ContextWindow is the model's context in tokens; 0 is unchecked.
	ContextWindow int `yaml:"context_window"`
	// Price is in USD per million tokens.
	Price ChatPrice `yaml:"price"`
	// Guardrail is a Bedrock guardrail applied to every call.
	Guardrail *ChatGuardrail `yaml:"guardrail"`
	// Fallbacks are model ids tried in order when this one fails before
	// its first token.
	Fallbacks []string `yaml:"fallbacks"`
	// RequestFields are added to every upstream request of the model:
	// Bedrock's additionalModelRequestFields (e.g. thinking: {type:
	// enabled, budget_tokens: 2048}), or top-level fields of an
	// OpenAI-compatible request (e.g. top_k: 20), which may not name a
	// field Gatehouse sets (model, messages, max_tokens, temperature, ...).
	RequestFields map[string]any `yaml:"request_fields"`
	// ReasoningEffort maps a reasoning effort a request may ask for (none,
	// minimal, low, medium, high, xhigh, max) to request fields sent with it,
	// merged over request_fields by top-level key (the effort's value
	// wins), e.g. for Claude on Bedrock {low: {thinking: {type: enabled,
	// budget_tokens: 1024}}, high: {thinking: {type: enabled,
	// budget_tokens: 16384}}}. Without a mapping an effort goes to an
	// openai provider as reasoning_effort (a mapping replaces it, and may
	// set reasoning_effort itself), a bedrock model refuses it (but none),
	// and echo ignores it.
	ReasoningEffort map[string]any `yaml:"reasoning_effort"`
	// Vision says whether the model reads images. Absent means true; when
	// false, a request holding an image is refused with a 400 naming the
	// model rather than sent upstream, and the model is skipped as a
	// fallback for one.
	Vision *bool `yaml:"vision"`
	// Tools says whether the model calls tools. Absent means true; when
	// false, a request offering tools or holding tool calls or results is
	// refused with a 400 naming the model, and the model is skipped as a
	// fallback for one.
	Tools *bool `yaml:"tools"`
}

// ReadsImages reports whether the model reads images: Vision, true when
// absent.
func (m ChatModel) ReadsImages() bool { return m.Vision == nil || *m.Vision }

// CallsTools reports whether the model calls tools: Tools, true when
// absent.
func (m ChatModel) CallsTools() bool { return m.Tools == nil || *m.Tools }

// ChatPrice is a model's price in USD per million tokens.
type ChatPrice struct {
	Input       float64 `yaml:"input_per_million"`
	Output      float64 `yaml:"output_per_million"`
	CachedInput float64 `yaml:"cached_input_per_million"`
	// CacheWriteInput prices input tokens written to the upstream's
	// prompt cache (Bedrock); 0 means Input. Anthropic's models charge
	// 1.25 times the input price for 5-minute cache writes.
	CacheWriteInput float64 `yaml:"cache_write_input_per_million"`
	// CacheWrite1hInput prices input tokens written to the prompt cache
	// for an hour (cache_control ttl "1h"); 0 means CacheWriteInput.
	// Anthropic's models charge twice the input price.
	CacheWrite1hInput float64 `yaml:"cache_write_1h_input_per_million"`
}

// ChatGuardrail is a Bedrock guardrail configuration.
type ChatGuardrail struct {
	ID                   string `yaml:"id"`
	Version              string `yaml:"version"`
	Trace                string `yaml:"trace"`
	StreamProcessingMode string `yaml:"stream_processing_mode"`
}

func (c Chat) validate() []error {
	var errs []error
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("chat.concurrency: must be at least 1"))
	}
	if c.EchoDelay < 0 {
		errs = append(errs, errors.New("chat.echo_delay: must not be negative"))
	}
	if c.RetryAttempts < 0 {
		errs = append(errs, errors.New("chat.retry_attempts: must not be negative"))
	}
	if c.RetryBackoff < 0 {
		errs = append(errs, errors.New("chat.retry_backoff: must not be negative"))
	}
	if c.CacheIndexMaxKeys < -1 || c.CacheIndexMaxKeys > 1<<26 {
		errs = append(errs, fmt.Errorf("chat.cache_index_max_keys: %d must be -1 (off), 0 (default 1048576) or up to 67108864", c.CacheIndexMaxKeys))
	}
	if c.MaxMessages < 0 {
		errs = append(errs, errors.New("chat.max_messages: must not be negative (0 means 200)"))
	}
	if c.MaxInputBytes < 0 {
		errs = append(errs, errors.New("chat.max_input_bytes: must not be negative (0 means 524288)"))
	}
	if c.MaxOutputTokens < 0 {
		errs = append(errs, errors.New("chat.max_output_tokens: must not be negative (0 means each model's max_tokens)"))
	}
	if c.AuthzTimeout < 0 {
		errs = append(errs, errors.New("chat.authz_timeout: must not be negative (0 means 1s)"))
	}
	if c.FirstTokenTimeout < 0 {
		errs = append(errs, errors.New("chat.first_token_timeout: must not be negative"))
	}
	for i, p := range c.Providers {
		switch {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("chat.providers[%d].name: must be set", i))
		case p.Type != "bedrock" && p.Type != "openai":
			errs = append(errs, fmt.Errorf("chat.providers[%d].type: %q is not bedrock or openai", i, p.Type))
		case p.Type == "openai" && p.BaseURL == "":
			errs = append(errs, fmt.Errorf("chat.providers[%d].base_url: required for an openai provider", i))
		case p.MaxConcurrent < 0:
			errs = append(errs, fmt.Errorf("chat.providers[%d].max_concurrent: must not be negative", i))
		}
	}
	for i, m := range c.Models {
		switch {
		case m.ID == "":
			errs = append(errs, fmt.Errorf("chat.models[%d].id: must be set", i))
		case m.Provider == "":
			errs = append(errs, fmt.Errorf("chat.models[%d].provider: must be set", i))
		case m.MaxTokens < 1:
			errs = append(errs, fmt.Errorf("chat.models[%d].max_tokens: must be at least 1", i))
		}
		if len(m.RequestFields) > 0 {
			if _, err := json.Marshal(m.RequestFields); err != nil {
				errs = append(errs, fmt.Errorf("chat.models[%d].request_fields: must be plain JSON values (strings, numbers, booleans, lists, maps): %v", i, err))
			}
		}
		errs = append(errs, reasoningEffortErrors(i, m.ReasoningEffort)...)
	}
	return errs
}

// reasoningEffortErrors validates the reasoning_effort mappings of
// chat.models[i]: keys are efforts, values maps of plain JSON values.
func reasoningEffortErrors(i int, efforts map[string]any) []error {
	var errs []error
	for _, effort := range slices.Sorted(maps.Keys(efforts)) {
		field := fmt.Sprintf("chat.models[%d].reasoning_effort.%s", i, effort)
		fields, isMap := efforts[effort].(map[string]any)
		switch {
		case !bus.ValidReasoningEffort(effort):
			errs = append(errs, fmt.Errorf("%s: %q is not a reasoning effort; use %s", field, effort, strings.Join(bus.ReasoningEfforts, ", ")))
		case !isMap:
			errs = append(errs, fmt.Errorf("%s: must be a map of request fields, e.g. {thinking: {type: enabled, budget_tokens: 1024}}", field))
		default:
			if _, err := json.Marshal(fields); err != nil {
				errs = append(errs, fmt.Errorf("%s: must be plain JSON values (strings, numbers, booleans, lists, maps): %v", field, err))
			}
		}
	}
	return errs
}
