package chat

import (
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// validateOutput checks a request's outputConfig for model m and returns
// the bytes its schema adds to the input.
func (s *Service) validateOutput(oc *bus.OutputConfig, m *Model) (int, *requestError) {
	if oc == nil {
		return 0, nil
	}
	f := oc.TextFormat
	if f == nil {
		return 0, invalid("outputConfig.textFormat is missing: set it, or leave outputConfig out")
	}
	switch f.Type {
	case bus.OutputFormatJSONSchema:
		if f.Structure == nil || f.Structure.JSONSchema == nil {
			return 0, invalid("outputConfig.textFormat.structure.jsonSchema is missing: a json_schema output needs its schema")
		}
		d := f.Structure.JSONSchema
		if !isJSONObject([]byte(d.Schema)) {
			return 0, invalid("outputConfig.textFormat.structure.jsonSchema.schema must be a JSON Schema object, written as a string")
		}
		if d.Name != "" && !validToolName(d.Name) {
			return 0, invalid("outputConfig.textFormat.structure.jsonSchema.name %q is not valid: use 1 to %d of a-z, A-Z, 0-9, _ and -", d.Name, MaxToolNameBytes)
		}
	case bus.OutputFormatJSONObject:
	default:
		return 0, invalid("outputConfig.textFormat.type %q is not supported; want %q or %q", f.Type, bus.OutputFormatJSONSchema, bus.OutputFormatJSONObject)
	}
	if !provider.SupportsOutput(s.upstreams[m.Provider].p, f.Type) {
		return 0, invalid("model %s (provider %s) cannot produce %s output", m.ID, m.Provider, f.Type)
	}
	return provider.OutputBytes(f), nil
}

// outputFormat is the output format of a request (nil for none).
func outputFormat(req *bus.ChatRequest) *bus.OutputFormat {
	if req.OutputConfig == nil {
		return nil
	}
	return req.OutputConfig.TextFormat
}
