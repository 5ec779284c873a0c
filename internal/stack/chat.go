package stack

import (
	"encoding/json"
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/nats-io/nats.go"
)

func buildChat(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return chat.New(ChatConfig(cfg.NATS, cfg.Chat, log), nc)
}

// ChatConfig maps the NATS and chat configuration sections to the chat
// service's Config. Deeper checks (unknown providers and fallbacks, price
// and token limits) are chat.Config.Validate's, with the same field names.
func ChatConfig(n config.NATS, c config.Chat, log *slog.Logger) chat.Config {
	out := chat.Config{
		Prefix:            n.Prefix,
		Streams:           StreamOptions(n),
		Logger:            log,
		Concurrency:       c.Concurrency,
		EchoDelay:         c.EchoDelay,
		RetryAttempts:     c.RetryAttempts,
		RetryBackoff:      c.RetryBackoff,
		FirstTokenTimeout: c.FirstTokenTimeout,
		AuthzTimeout:      c.AuthzTimeout,
		CacheIndexMaxKeys: c.CacheIndexMaxKeys,
		MaxMessages:       c.MaxMessages,
		MaxInputBytes:     c.MaxInputBytes,
		MaxOutputTokens:   c.MaxOutputTokens,
	}
	for _, p := range c.Providers {
		out.Providers = append(out.Providers, chat.ProviderConfig{
			Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIKey: p.APIKey, Region: p.Region, MaxConcurrent: p.MaxConcurrent, ImageURLs: p.ImageURLs,
		})
	}
	for _, m := range c.Models {
		cm := chat.Model{
			ID: m.ID, Aliases: m.Aliases, Provider: m.Provider, UpstreamModel: m.UpstreamModel,
			DefaultMaxTokens: m.DefaultMaxTokens, MaxTokens: m.MaxTokens, ContextWindow: m.ContextWindow,
			Price: chat.Price{InputPerMillion: m.Price.Input, OutputPerMillion: m.Price.Output, CachedInputPerMillion: m.Price.CachedInput,
				CacheWriteInputPerMillion: m.Price.CacheWriteInput, CacheWrite1hInputPerMillion: m.Price.CacheWrite1hInput},
			Fallbacks: m.Fallbacks,
			NoVision:  !m.ReadsImages(), NoTools: !m.CallsTools(),
		}
		if cm.DefaultMaxTokens == 0 {
			cm.DefaultMaxTokens = min(cm.MaxTokens, chat.DefaultModels()[0].DefaultMaxTokens)
		}
		if len(m.RequestFields) > 0 {
			// config.Validate checked that it encodes.
			cm.RequestFields, _ = json.Marshal(m.RequestFields)
		}
		if len(m.ReasoningEffort) > 0 {
			cm.ReasoningEffort = make(map[string]json.RawMessage, len(m.ReasoningEffort))
			for effort, fields := range m.ReasoningEffort {
				// config.Validate checked that each encodes.
				cm.ReasoningEffort[effort], _ = json.Marshal(fields)
			}
		}
		if g := m.Guardrail; g != nil {
			cm.Guardrail = &chat.Guardrail{ID: g.ID, Version: g.Version, Trace: g.Trace, StreamProcessingMode: g.StreamProcessingMode}
		}
		out.Models = append(out.Models, cm)
	}
	return out
}
