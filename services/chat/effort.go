package chat

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// effortFields validates model m's ReasoningEffort mappings for its
// provider type ("" for echo) and returns, for each mapped effort, the
// request fields sent with it: m's RequestFields merged with the mapping
// by top-level key, the mapping's value winning. It returns nil when m
// maps no effort. field names m in errors.
func effortFields(m *Model, providerType, field string) (map[string]json.RawMessage, error) {
	if len(m.ReasoningEffort) == 0 {
		return nil, nil
	}
	var base map[string]json.RawMessage
	if len(m.RequestFields) > 0 {
		// checkRequestFields has checked it is an object.
		_ = json.Unmarshal(m.RequestFields, &base)
	}
	out := make(map[string]json.RawMessage, len(m.ReasoningEffort))
	for _, effort := range slices.Sorted(maps.Keys(m.ReasoningEffort)) {
		name := fmt.Sprintf("%s.ReasoningEffort[%q]", field, effort)
		if !bus.ValidReasoningEffort(effort) {
			return nil, fmt.Errorf("%w: %s: %q is not a reasoning effort; use %s", ErrInvalidConfig, name, effort, strings.Join(bus.ReasoningEfforts, ", "))
		}
		fields, err := requestFields(m.ReasoningEffort[effort], providerType, name, "reasoning_effort")
		if err != nil {
			return nil, err
		}
		merged := maps.Clone(base)
		if merged == nil {
			merged = make(map[string]json.RawMessage, len(fields))
		}
		maps.Copy(merged, fields)
		if out[effort], err = json.Marshal(merged); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, name, err)
		}
	}
	return out, nil
}

// effortFields returns the request fields m is called with for the
// reasoning effort effort, and whether m maps that effort.
func (c catalog) effortFields(m *Model, effort string) (json.RawMessage, bool) {
	f, ok := c.efforts[m][effort]
	return f, ok
}

// honoursEffort reports whether model m can honour the reasoning effort
// effort ("" asks for nothing): it maps the effort to request fields, or
// its provider takes it as it is ([provider.TakesReasoningEffort]).
func (s *Service) honoursEffort(m *Model, effort string) bool {
	if effort == "" {
		return true
	}
	if _, ok := s.models.effortFields(m, effort); ok {
		return true
	}
	return provider.TakesReasoningEffort(s.upstreams[m.Provider].p, effort)
}

// validateEffort checks a request's reasoning effort, known to be "" or
// valid, for model m.
func (s *Service) validateEffort(effort string, m *Model) *requestError {
	if !s.honoursEffort(m, effort) {
		return invalid("model %s (provider %s) cannot take reasoning effort %q: configure chat.models[].reasoning_effort.%s for it", m.ID, m.Provider, effort, effort)
	}
	return nil
}
