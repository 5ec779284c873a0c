package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cache scopes. A cached answer never reaches a caller outside its scope,
// because the scope is part of the key.
const (
	CacheScopeUser   = "user"
	CacheScopeTenant = "tenant"
	CacheScopeGlobal = "global"
)

// CacheGetRequest looks up Key.
type CacheGetRequest struct {
	Key string `json:"key"`
}

// CacheGetResponse is a hit (Entry set) or a miss.
type CacheGetResponse struct {
	Hit   bool        `json:"hit"`
	Entry *CacheEntry `json:"entry,omitempty"`
}

// CachePutRequest stores Entry under Key.
type CachePutRequest struct {
	Key   string     `json:"key"`
	Entry CacheEntry `json:"entry"`
}

// CachePutResponse acknowledges a store.
type CachePutResponse struct {
	Stored bool `json:"stored"`
}

// CacheEntry is a prepared answer.
type CacheEntry struct {
	ModelID   string    `json:"modelId"`
	Text      string    `json:"text"`
	Usage     Usage     `json:"usage"`
	CreatedAt time.Time `json:"createdAt"`
}

// CacheKey returns the exact-match cache key: a hex SHA-256 of the scope
// (e.g. "user:acme/alice"), the model, the normalised messages, the
// generation parameters, the tools offered, the output format, the
// reasoning effort, the OpenAI parameters that change the answer
// (logit_bias, verbosity), a hash of each image and of each reasoning
// block sent back. Conversation ids are not part of it, nor the OpenAI
// hints (user, safety_identifier, prompt_cache_key, service_tier) and the
// prompt cache points (see [ContentBlock.CachePoint]), which ask nothing
// of the answer: the scope already keeps one caller's answers
// from another. The key of a text-only request without tools, output
// format, reasoning effort or OpenAI parameters is the same as before
// those existed, so stored and imported answers stay valid.
func CacheKey(scope, modelID string, req ChatRequest) string {
	type toolBlocks struct {
		Message int               `json:"i"`
		Uses    []ToolUseBlock    `json:"u,omitempty"`
		Results []ToolResultBlock `json:"r,omitempty"`
		// Images are "<format>:<hex SHA-256 of the bytes>" or
		// "url:<hex SHA-256 of the URL>", in order.
		Images []string `json:"g,omitempty"`
		// Reasoning are hex SHA-256s of the reasoning blocks sent back
		// (text, signature, redacted content), in order.
		Reasoning []string `json:"z,omitempty"`
	}
	type norm struct {
		Scope    string           `json:"s"`
		Model    string           `json:"m"`
		System   []string         `json:"y,omitempty"`
		Messages [][2]string      `json:"x"`
		Params   *InferenceConfig `json:"p,omitempty"`
		Tools    *ToolConfig      `json:"t,omitempty"`
		Output   *OutputConfig    `json:"o,omitempty"`
		Blocks   []toolBlocks     `json:"b,omitempty"`
		Effort   string           `json:"e,omitempty"`
		// LogitBias is encoded with its keys sorted, so their order in
		// the request does not matter.
		LogitBias map[string]float64 `json:"l,omitempty"`
		Verbosity string             `json:"v,omitempty"`
	}
	n := norm{Scope: scope, Model: modelID, Params: req.InferenceConfig, Tools: withoutCachePoints(req.ToolConfig), Output: req.OutputConfig, Effort: req.ReasoningEffort}
	if p := req.OpenAIParams; p != nil {
		n.LogitBias, n.Verbosity = p.LogitBias, p.Verbosity
	}
	for _, b := range req.System {
		if b.CachePoint == nil {
			n.System = append(n.System, strings.TrimSpace(b.Text))
		}
	}
	for i, m := range req.Messages {
		var sb strings.Builder
		var tb toolBlocks
		texts := 0
		for _, b := range m.Content {
			switch {
			case b.ToolUse != nil:
				tb.Uses = append(tb.Uses, *b.ToolUse)
			case b.ToolResult != nil:
				tb.Results = append(tb.Results, *b.ToolResult)
			case b.Image != nil && b.Image.Source.URL != "":
				sum := sha256.Sum256([]byte(b.Image.Source.URL))
				tb.Images = append(tb.Images, "url:"+hex.EncodeToString(sum[:]))
			case b.Image != nil:
				sum := sha256.Sum256(b.Image.Source.Bytes)
				tb.Images = append(tb.Images, b.Image.Format+":"+hex.EncodeToString(sum[:]))
			case b.ReasoningContent != nil:
				tb.Reasoning = append(tb.Reasoning, reasoningHash(b.ReasoningContent))
			case b.CachePoint != nil:
			default:
				if texts > 0 {
					sb.WriteByte('\n')
				}
				sb.WriteString(strings.TrimSpace(b.Text))
				texts++
			}
		}
		n.Messages = append(n.Messages, [2]string{strings.ToLower(m.Role), sb.String()})
		if tb.Uses != nil || tb.Results != nil || tb.Images != nil || tb.Reasoning != nil {
			tb.Message = i
			n.Blocks = append(n.Blocks, tb)
		}
	}
	b, err := json.Marshal(n)
	if err != nil {
		// Only a tool input or schema that is not valid JSON can fail;
		// chat validates both before asking. Such a request is keyed
		// on its raw bytes, never on a shared empty key.
		b = append([]byte(err.Error()), fmt.Sprintf("%#v", req)...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withoutCachePoints returns tc, or a copy of it without the tools
// entries that are cache points when it has some.
func withoutCachePoints(tc *ToolConfig) *ToolConfig {
	if tc == nil || !slices.ContainsFunc(tc.Tools, func(t Tool) bool { return t.CachePoint != nil }) {
		return tc
	}
	out := *tc
	out.Tools = slices.DeleteFunc(slices.Clone(tc.Tools), func(t Tool) bool { return t.CachePoint != nil })
	return &out
}

// reasoningHash is the hex SHA-256 of a reasoning block's parts, each
// length-prefixed so that no two blocks share one.
func reasoningHash(r *ReasoningBlock) string {
	h := sha256.New()
	part := func(b []byte) {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	if t := r.ReasoningText; t != nil {
		h.Write([]byte{'t'})
		part([]byte(t.Text))
		part([]byte(t.Signature))
	}
	h.Write([]byte{'r'})
	part(r.RedactedContent)
	return hex.EncodeToString(h.Sum(nil))
}
