package bus

// QueueChat is the queue group of chat's request/reply endpoints.
const QueueChat = "chat"

// ChatModels is the subject on which chat answers a [ModelsRequest] with
// its model catalog (a micro endpoint in queue group [QueueChat]).
func (s Subjects) ChatModels() string { return s.Prefix() + ".chat.v1.models" }

// ModelsRequest asks chat for its model catalog.
type ModelsRequest struct{}

// ModelsResponse lists the models chat serves, in catalog order.
type ModelsResponse struct {
	Models []ModelInfo `json:"models"`
}

// ModelInfo describes one model of the catalog.
type ModelInfo struct {
	ID               string   `json:"id"`
	Aliases          []string `json:"aliases,omitempty"`
	Provider         string   `json:"provider"`
	ContextWindow    int      `json:"contextWindow,omitempty"`
	DefaultMaxTokens int      `json:"defaultMaxTokens"`
	MaxTokens        int      `json:"maxTokens"`
	// Prices are in USD per million tokens.
	InputPerMillion       float64 `json:"inputPerMillion,omitempty"`
	OutputPerMillion      float64 `json:"outputPerMillion,omitempty"`
	CachedInputPerMillion float64 `json:"cachedInputPerMillion,omitempty"`
	// CacheWriteInputPerMillion prices input written to the upstream's
	// prompt cache; absent means InputPerMillion.
	CacheWriteInputPerMillion float64 `json:"cacheWriteInputPerMillion,omitempty"`
	// CacheWrite1hInputPerMillion prices input written to the prompt cache
	// for an hour; absent means CacheWriteInputPerMillion.
	CacheWrite1hInputPerMillion float64  `json:"cacheWrite1hInputPerMillion,omitempty"`
	Fallbacks                   []string `json:"fallbacks,omitempty"`
	// Capabilities says what the model can do besides text; nil from a
	// chat that predates it, which means unknown.
	Capabilities *ModelCapabilities `json:"capabilities,omitempty"`
}

// ModelCapabilities is what a model of the catalog can do besides reading
// and writing text, as its configuration says.
type ModelCapabilities struct {
	// Vision is whether the model reads images.
	Vision bool `json:"vision"`
	// Tools is whether the model calls tools.
	Tools bool `json:"tools"`
}
