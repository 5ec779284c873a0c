package provider

import (
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// defaultSchemaName names a json_schema output format sent without a name
// to OpenAI, which requires one.
const defaultSchemaName = "response"

// SupportsOutput reports whether p can produce answers of the output
// format type typ (a bus.OutputFormat* value): OpenAI-compatible servers
// do both, Bedrock json_schema only, echo neither.
func SupportsOutput(p Provider, typ string) bool {
	switch p.(type) {
	case *OpenAI:
		return typ == bus.OutputFormatJSONSchema || typ == bus.OutputFormatJSONObject
	case *Bedrock:
		return typ == bus.OutputFormatJSONSchema
	}
	return false
}

// FetchesImages reports whether p may be sent images by http(s) URL:
// OpenAI-compatible servers whose configuration allows it
// ([OpenAI.ImageURLs]), and echo, which ignores images. Bedrock needs the
// bytes.
func FetchesImages(p Provider) bool {
	switch p := p.(type) {
	case *OpenAI:
		return p.ImageURLs
	case *Echo:
		return true
	}
	return false
}

// TakesReasoningEffort reports whether p honours the reasoning effort
// effort (a bus.ReasoningEffort* value) without request fields mapped to
// it by the model's configuration: OpenAI-compatible servers take it as
// reasoning_effort, echo ignores it (it does no reasoning), and Bedrock,
// which has no such parameter, takes only "none" (nothing to send).
func TakesReasoningEffort(p Provider, effort string) bool {
	switch p.(type) {
	case *OpenAI, *Echo:
		return true
	}
	return effort == bus.ReasoningEffortNone
}

// TakesOpenAIParam reports whether p honours the OpenAI parameter param
// that changes the answer (bus.ParamLogitBias, bus.ParamVerbosity):
// OpenAI-compatible servers get it as sent, echo ignores it (as it does a
// reasoning effort), Bedrock has no such parameter. The hints (user,
// safety_identifier, prompt_cache_key, service_tier) ask nothing of the
// answer and need no such check.
func TakesOpenAIParam(p Provider, param string) bool {
	switch p.(type) {
	case *OpenAI, *Echo:
		return true
	}
	return false
}

// oaResponseFormat is OpenAI's response_format.
type oaResponseFormat struct {
	Type       string        `json:"type"`
	JSONSchema *oaJSONSchema `json:"json_schema,omitempty"`
}

type oaJSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// oaOutput encodes an output format as response_format (nil for none).
func oaOutput(f *bus.OutputFormat) *oaResponseFormat {
	if f == nil {
		return nil
	}
	rf := &oaResponseFormat{Type: f.Type}
	if f.Structure != nil && f.Structure.JSONSchema != nil {
		d := f.Structure.JSONSchema
		name := d.Name
		if name == "" {
			name = defaultSchemaName
		}
		rf.JSONSchema = &oaJSONSchema{Name: name, Description: d.Description, Schema: json.RawMessage(d.Schema), Strict: d.Strict}
	}
	return rf
}

// bedrockOutput encodes a json_schema output format as Converse's
// outputConfig (nil for none). Chat never sends Bedrock another type.
func bedrockOutput(f *bus.OutputFormat) *types.OutputConfig {
	if f == nil || f.Structure == nil || f.Structure.JSONSchema == nil {
		return nil
	}
	d := f.Structure.JSONSchema
	def := types.JsonSchemaDefinition{Schema: aws.String(d.Schema)}
	if d.Name != "" {
		def.Name = aws.String(d.Name)
	}
	if d.Description != "" {
		def.Description = aws.String(d.Description)
	}
	return &types.OutputConfig{TextFormat: &types.OutputFormat{
		Type:      types.OutputFormatTypeJsonSchema,
		Structure: &types.OutputFormatStructureMemberJsonSchema{Value: def},
	}}
}
