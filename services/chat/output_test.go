package chat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

const personSchema = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}`

// jsonSchemaOutput asks for output valid against personSchema.
func jsonSchemaOutput(name string) func(*bus.ChatRequest) {
	return func(r *bus.ChatRequest) {
		r.OutputConfig = &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONSchema, Structure: &bus.OutputStructure{
			JSONSchema: &bus.JSONSchemaDefinition{Schema: personSchema, Name: name, Description: "a person"},
		}}}
	}
}

func jsonObjectOutput(r *bus.ChatRequest) {
	r.OutputConfig = &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONObject}}
}

// TestStructuredOutput sends json_schema and json_object requests to each
// provider: OpenAI-compatible servers get response_format, Bedrock gets
// outputConfig.textFormat with the schema as a string, and what a model's
// provider cannot produce (json_object on Bedrock, anything on echo) is a
// validation error naming the model. A fallback that cannot produce the
// format is skipped.
func TestStructuredOutput(t *testing.T) {
	t.Parallel()
	oai := providertest.NewOpenAI(providertest.Reply{Chunks: []string{`{"name":"Ada",`, `"age":36}`}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 6}})
	t.Cleanup(oai.Close)
	bedrock := providertest.NewBedrock(providertest.Reply{Chunks: []string{`{"name":"Ada",`, `"age":36}`}, Usage: &providertest.Usage{InputTokens: 5, OutputTokens: 6}})
	t.Cleanup(bedrock.Close)
	ho := newHarness(t, openAIConfig(oai), contractOpts{})
	hb := newHarness(t, bedrockConfig(bedrock), contractOpts{})

	t.Run("openai", func(t *testing.T) {
		t.Parallel()
		who := user("out-oa")
		sub := ho.listen(ho.subj.Outbound(who.ChannelID))
		ho.publish(who, "out-oa-1", modelRequest("gpt", "who?", jsonSchemaOutput("person")), nil)
		checkAnswer(t, answer(t, sub), "out-oa-1", "conv-1", `{"name":"Ada","age":36}`, "end_turn")
		ho.publish(who, "out-oa-2", modelRequest("gpt", "who else?", jsonObjectOutput), nil)
		checkAnswer(t, answer(t, sub), "out-oa-2", "conv-1", `{"name":"Ada","age":36}`, "end_turn")
		reqs := oai.Requests()
		var got []string
		for _, r := range reqs {
			b, _ := json.Marshal(r.Body["response_format"])
			got = append(got, string(b))
		}
		want := []string{
			`{"json_schema":{"description":"a person","name":"person","schema":` + sortedJSON(t, personSchema) + `},"type":"json_schema"}`,
			`{"type":"json_object"}`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("response_format sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("bedrock", func(t *testing.T) {
		t.Parallel()
		who := user("out-br")
		sub := hb.listen(hb.subj.Outbound(who.ChannelID))
		hb.publish(who, "out-br-1", modelRequest("claude", "who?", jsonSchemaOutput("")), nil)
		checkAnswer(t, answer(t, sub), "out-br-1", "conv-1", `{"name":"Ada","age":36}`, "end_turn")
		reqs := bedrock.Requests()
		b, _ := json.Marshal(reqs[len(reqs)-1].Body["outputConfig"])
		schema, _ := json.Marshal(personSchema)
		if want := `{"textFormat":{"structure":{"jsonSchema":{"description":"a person","schema":` + string(schema) + `}},"type":"json_schema"}}`; string(b) != want {
			t.Fatalf("outputConfig sent\n%s\nwant\n%s", b, want)
		}
		hb.refused(t, who, "out-br-2", modelRequest("claude", "who?", jsonObjectOutput), "model claude (provider br) cannot produce json_object output")
	})

	t.Run("fallback skipped", func(t *testing.T) {
		t.Parallel()
		// gpt fails twice; its fallback echo cannot produce JSON, so the
		// request fails rather than answer with echoed text.
		failing := providertest.NewOpenAI(providertest.Reply{Status: 500})
		t.Cleanup(failing.Close)
		hf := newHarness(t, openAIConfig(failing), contractOpts{})
		who := user("out-fb")
		sub := hf.listen(hf.subj.Outbound(who.ChannelID))
		hf.publish(who, "out-fb-1", modelRequest("gpt", "who?", jsonSchemaOutput("person")), nil)
		evs := answer(t, sub)
		last := evs[len(evs)-1]
		if last.Error == nil || last.Error.Type != bus.ErrTypeUpstreamError || last.Error.Details["model"] != "gpt" {
			t.Fatalf("last event %+v", last)
		}
		if text, _ := deltaText(evs); text != "" || len(failing.Requests()) != 2 {
			t.Fatalf("answered %q after %d upstream requests, want nothing after 2", text, len(failing.Requests()))
		}
	})

	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name string
			mod  func(*bus.ChatRequest)
			want string
		}{
			{"echo", jsonSchemaOutput("person"), "model echo (provider echo) cannot produce json_schema output"},
			{"no text format", func(r *bus.ChatRequest) { r.OutputConfig = &bus.OutputConfig{} }, "outputConfig.textFormat is missing"},
			{"bad type", func(r *bus.ChatRequest) {
				r.OutputConfig = &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: "xml"}}
			}, `outputConfig.textFormat.type "xml" is not supported`},
			{"no schema", func(r *bus.ChatRequest) {
				r.OutputConfig = &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: bus.OutputFormatJSONSchema}}
			}, "outputConfig.textFormat.structure.jsonSchema is missing"},
			{"schema not object", func(r *bus.ChatRequest) {
				jsonSchemaOutput("p")(r)
				r.OutputConfig.TextFormat.Structure.JSONSchema.Schema = `"string"`
			}, "jsonSchema.schema must be a JSON Schema object"},
			{"bad name", jsonSchemaOutput("a person"), `jsonSchema.name "a person" is not valid`},
		}
		for i, tc := range cases {
			model := "gpt"
			if tc.name == "echo" {
				model = "echo"
			}
			ho.refused(t, user("out-v"+strings.Repeat("x", i)), "out-v-"+strings.ReplaceAll(tc.name, " ", "-"), modelRequest(model, "who?", tc.mod), tc.want)
		}
	})
}

// sortedJSON re-encodes a JSON object with its keys sorted, as a fake's
// decoded body marshals.
func sortedJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
