package bus

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Limits of an [OpenAIParams].
const (
	// MaxLogitBiasEntries bounds the token ids of OpenAIParams.LogitBias.
	MaxLogitBiasEntries = 300
	// MaxLogitBias bounds the magnitude of a logit bias: OpenAI takes
	// -100..100.
	MaxLogitBias = 100
	// MaxOpenAIUserBytes bounds OpenAIParams.User and SafetyIdentifier
	// (OpenAI asks for at most 64, later 128, characters of a hashed id;
	// other servers may take more).
	MaxOpenAIUserBytes = 256
	// MaxPromptCacheKeyBytes bounds OpenAIParams.PromptCacheKey; OpenAI
	// documents no limit.
	MaxPromptCacheKeyBytes = 1024
)

// Verbosities lists the accepted OpenAIParams.Verbosity values (OpenAI's
// verbosity).
var Verbosities = []string{"low", "medium", "high"}

// ServiceTiers lists the accepted OpenAIParams.ServiceTier values (OpenAI's
// service_tier; "fast" is the request-level name of priority processing).
var ServiceTiers = []string{"auto", "default", "flex", "scale", "priority", "fast"}

// OpenAIParams are parameters of OpenAI's chat completions API that have
// no Converse equivalent (not a Converse field; Gatehouse's). Chat sends
// them as they are to OpenAI-compatible servers. LogitBias and Verbosity
// change the answer: a model whose provider cannot take them (Bedrock) is
// refused a request setting them, and they are part of the cache key.
// User, SafetyIdentifier, PromptCacheKey and ServiceTier are hints to the
// provider (abuse detection, its prompt cache, its processing tier): a
// provider without them does not get them, nothing is refused, and they
// are not part of the cache key. An empty field is unset.
type OpenAIParams struct {
	// LogitBias maps token ids (decimal strings, in the model's
	// tokenizer) to a bias within -[MaxLogitBias]..[MaxLogitBias] added
	// to the token's logit; at most [MaxLogitBiasEntries] entries.
	LogitBias map[string]float64 `json:"logitBias,omitempty"`
	// Verbosity is one of [Verbosities].
	Verbosity string `json:"verbosity,omitempty"`
	// User is a stable id of the end user (OpenAI's user, which it
	// replaces by SafetyIdentifier and PromptCacheKey); at most
	// [MaxOpenAIUserBytes].
	User string `json:"user,omitempty"`
	// SafetyIdentifier is a stable id of the end user for the provider's
	// abuse detection, ideally a hash; at most [MaxOpenAIUserBytes].
	SafetyIdentifier string `json:"safetyIdentifier,omitempty"`
	// PromptCacheKey groups requests that share a prompt prefix in the
	// provider's prompt cache; at most [MaxPromptCacheKeyBytes].
	PromptCacheKey string `json:"promptCacheKey,omitempty"`
	// ServiceTier is one of [ServiceTiers].
	ServiceTier string `json:"serviceTier,omitempty"`
}

// OpenAI parameters that change the answer, by their name in OpenAI's
// API.
const (
	ParamLogitBias = "logit_bias"
	ParamVerbosity = "verbosity"
)

// AnswerParams returns the names in OpenAI's API of the parameters set in
// p that change the answer ([ParamLogitBias], [ParamVerbosity]), in that
// order. p may be nil.
func (p *OpenAIParams) AnswerParams() []string {
	if p == nil {
		return nil
	}
	var out []string
	if len(p.LogitBias) > 0 {
		out = append(out, ParamLogitBias)
	}
	if p.Verbosity != "" {
		out = append(out, ParamVerbosity)
	}
	return out
}

// IsZero reports whether p sets nothing. p may be nil.
func (p *OpenAIParams) IsZero() bool {
	return p == nil || (len(p.LogitBias) == 0 && p.Verbosity == "" && p.User == "" &&
		p.SafetyIdentifier == "" && p.PromptCacheKey == "" && p.ServiceTier == "")
}

// OpenAIParamError is a value of an [OpenAIParams] field that Gatehouse
// refuses.
type OpenAIParamError struct {
	// Field is the field's name in OpenAI's API, e.g. "logit_bias".
	Field string
	// BusField is its name in [OpenAIParams]' JSON, e.g. "logitBias".
	BusField string
	// Entry says the error is about the logit_bias entry Key, not the
	// whole field.
	Entry bool
	Key   string
	// Reason says what is wrong and what is accepted, to follow the
	// field's name.
	Reason string
}

// Param returns the field at fault named field: field itself, or
// field["<token id>"] for one entry of logit_bias.
func (e *OpenAIParamError) Param(field string) string {
	if !e.Entry {
		return field
	}
	return fmt.Sprintf("%s[%q]", field, e.Key)
}

// Error implements error, naming the field as OpenAI's API does.
func (e *OpenAIParamError) Error() string { return e.Param(e.Field) + " " + e.Reason }

// Validate checks p's values against the limits above. p may be nil.
func (p *OpenAIParams) Validate() *OpenAIParamError {
	if p == nil {
		return nil
	}
	if n := len(p.LogitBias); n > MaxLogitBiasEntries {
		return &OpenAIParamError{Field: ParamLogitBias, BusField: "logitBias", Reason: fmt.Sprintf("has %d entries, more than the limit of %d", n, MaxLogitBiasEntries)}
	}
	// In order, so that the same request is always refused the same way.
	for _, k := range slices.Sorted(maps.Keys(p.LogitBias)) {
		if !validTokenID(k) {
			return &OpenAIParamError{Field: ParamLogitBias, BusField: "logitBias", Entry: true, Key: k, Reason: "is not a token id: keys are decimal token ids, e.g. \"50256\""}
		}
		if v := p.LogitBias[k]; v < -MaxLogitBias || v > MaxLogitBias {
			return &OpenAIParamError{Field: ParamLogitBias, BusField: "logitBias", Entry: true, Key: k, Reason: fmt.Sprintf("is %g; it must be within -%d..%d", v, MaxLogitBias, MaxLogitBias)}
		}
	}
	if v := p.Verbosity; v != "" && !slices.Contains(Verbosities, v) {
		return &OpenAIParamError{Field: ParamVerbosity, BusField: "verbosity", Reason: fmt.Sprintf("%q is not supported; use %s", v, strings.Join(Verbosities, ", "))}
	}
	if v := p.ServiceTier; v != "" && !slices.Contains(ServiceTiers, v) {
		return &OpenAIParamError{Field: "service_tier", BusField: "serviceTier", Reason: fmt.Sprintf("%q is not supported; use %s", v, strings.Join(ServiceTiers, ", "))}
	}
	for _, f := range []struct {
		field, busField, v string
		limit              int
	}{
		{"user", "user", p.User, MaxOpenAIUserBytes},
		{"safety_identifier", "safetyIdentifier", p.SafetyIdentifier, MaxOpenAIUserBytes},
		{"prompt_cache_key", "promptCacheKey", p.PromptCacheKey, MaxPromptCacheKeyBytes},
	} {
		if len(f.v) > f.limit {
			return &OpenAIParamError{Field: f.field, BusField: f.busField, Reason: fmt.Sprintf("is %d bytes, more than the limit of %d", len(f.v), f.limit)}
		}
	}
	return nil
}

// validTokenID reports whether s is a decimal token id: digits only, at
// most those of a uint32.
func validTokenID(s string) bool {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
