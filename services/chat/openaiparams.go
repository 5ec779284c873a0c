package chat

import (
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// checkOpenAIParams checks the values of a request's openaiParams,
// naming the field at fault.
func checkOpenAIParams(p *bus.OpenAIParams) *requestError {
	if err := p.Validate(); err != nil {
		return invalid("openaiParams.%s %s", err.Param(err.BusField), err.Reason)
	}
	return nil
}

// validateOpenAIParams checks that model m can take the parameters of p
// that change the answer (logit_bias, verbosity). The hints (user,
// safety_identifier, prompt_cache_key, service_tier) are never refused for
// a model: a provider without them does not get them.
func (s *Service) validateOpenAIParams(p *bus.OpenAIParams, m *Model) *requestError {
	if param := s.refusedOpenAIParam(m, p); param != "" {
		return invalid("model %s (provider %s) cannot take %s: its provider has no such parameter; leave it out or use a model of an OpenAI-compatible provider", m.ID, m.Provider, param)
	}
	return nil
}

// refusedOpenAIParam returns the first OpenAI parameter set in p that
// changes the answer and that model m cannot take, or "" when m can take
// them all ([provider.TakesOpenAIParam]).
func (s *Service) refusedOpenAIParam(m *Model, p *bus.OpenAIParams) string {
	for _, param := range p.AnswerParams() {
		if !provider.TakesOpenAIParam(s.upstreams[m.Provider].p, param) {
			return param
		}
	}
	return ""
}
