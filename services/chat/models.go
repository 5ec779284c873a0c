package chat

import (
	"fmt"

	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// Provider names a [Model.Provider] may take.
const (
	// ProviderEcho answers with the last user message, word by word.
	ProviderEcho = provider.EchoName
)

// Model is one entry of the model catalog.
type Model struct {
	// ID is the canonical model id: what clients send as modelId, what the
	// ledger records and what cache keys contain.
	ID string
	// Aliases are other names clients may use for the model.
	Aliases []string
	// Provider names the provider that serves the model ([ProviderEcho]).
	Provider string
	// DefaultMaxTokens is the output bound of a request that sets no
	// inferenceConfig.maxTokens.
	DefaultMaxTokens int
	// MaxTokens is the largest inferenceConfig.maxTokens accepted.
	MaxTokens int
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
type catalog map[string]*Model

// newCatalog indexes models by id and alias, rejecting duplicates and
// unknown providers.
func newCatalog(models []Model) (catalog, error) {
	c := make(catalog, len(models))
	for i := range models {
		m := &models[i]
		field := fmt.Sprintf("Models[%d]", i)
		switch {
		case m.ID == "":
			return nil, fmt.Errorf("%w: %s.ID is empty", ErrInvalidConfig, field)
		case m.Provider != ProviderEcho:
			return nil, fmt.Errorf("%w: %s.Provider %q is not a known provider (want %q)", ErrInvalidConfig, field, m.Provider, ProviderEcho)
		case m.MaxTokens < 1:
			return nil, fmt.Errorf("%w: %s.MaxTokens %d must be at least 1", ErrInvalidConfig, field, m.MaxTokens)
		case m.DefaultMaxTokens < 1 || m.DefaultMaxTokens > m.MaxTokens:
			return nil, fmt.Errorf("%w: %s.DefaultMaxTokens %d must be within 1..MaxTokens (%d)", ErrInvalidConfig, field, m.DefaultMaxTokens, m.MaxTokens)
		}
		for _, name := range append([]string{m.ID}, m.Aliases...) {
			if name == "" {
				return nil, fmt.Errorf("%w: %s has an empty alias", ErrInvalidConfig, field)
			}
			if _, dup := c[name]; dup {
				return nil, fmt.Errorf("%w: %s: model name %q is used twice", ErrInvalidConfig, field, name)
			}
			c[name] = m
		}
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("%w: Models is empty", ErrInvalidConfig)
	}
	return c, nil
}

// lookup resolves an id or alias.
func (c catalog) lookup(name string) (*Model, bool) {
	m, ok := c[name]
	return m, ok
}
