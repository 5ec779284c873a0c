package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
// (e.g. "user:acme/alice"), the model, the normalised messages and the
// generation parameters. Conversation ids are not part of it.
func CacheKey(scope, modelID string, req ChatRequest) string {
	type norm struct {
		Scope    string           `json:"s"`
		Model    string           `json:"m"`
		System   []string         `json:"y,omitempty"`
		Messages [][2]string      `json:"x"`
		Params   *InferenceConfig `json:"p,omitempty"`
	}
	n := norm{Scope: scope, Model: modelID, Params: req.InferenceConfig}
	for _, b := range req.System {
		n.System = append(n.System, strings.TrimSpace(b.Text))
	}
	for _, m := range req.Messages {
		var sb strings.Builder
		for i, b := range m.Content {
			if i > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(strings.TrimSpace(b.Text))
		}
		n.Messages = append(n.Messages, [2]string{strings.ToLower(m.Role), sb.String()})
	}
	b, _ := json.Marshal(n) // cannot fail: plain strings and numbers
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
