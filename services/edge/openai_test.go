package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

func TestOpenAITranslate(t *testing.T) {
	t.Parallel()
	ok := []struct {
		name, body string
		want       bus.ChatRequest
	}{
		{"string content", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "hi"}}}}}},
		{"parts, system, developer, merged turns", `{"model":"m","messages":[{"role":"system","content":"s1"},{"role":"developer","content":[{"type":"text","text":"s2"}]},
			{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":"c"},{"role":"assistant","content":"d"},{"role":"user","content":"e"}],
			"max_tokens":7,"temperature":0.3,"stop":"END"}`,
			bus.ChatRequest{ModelID: "m", System: []bus.ContentBlock{{Text: "s1"}, {Text: "s2"}}, Messages: []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "a"}, {Text: "b"}, {Text: "c"}}},
				{Role: "assistant", Content: []bus.ContentBlock{{Text: "d"}}},
				{Role: "user", Content: []bus.ContentBlock{{Text: "e"}}},
			}, InferenceConfig: &bus.InferenceConfig{MaxTokens: 7, Temperature: ptr(0.3), StopSequences: []string{"END"}}}},
		{"tools, a call and its results", `{"model":"m","messages":[{"role":"user","content":"weather in Paris and Rome?"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
				{"id":"c2","type":"function","function":{"name":"now","arguments":""}}]},
			{"role":"tool","tool_call_id":"c1","content":"18 C"},{"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":"12:00"}]},
			{"role":"user","content":"and tomorrow?"}],
			"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
				{"type":"function","function":{"name":"now"}}],
			"tool_choice":{"type":"function","function":{"name":"now"}},"parallel_tool_calls":false,"response_format":{"type":"text"},"logprobs":false,"modalities":["text"]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "weather in Paris and Rome?"}}},
				{Role: "assistant", Content: []bus.ContentBlock{
					{ToolUse: &bus.ToolUseBlock{ToolUseID: "c1", Name: "get_weather", Input: json.RawMessage(`{"city": "Paris"}`)}},
					{ToolUse: &bus.ToolUseBlock{ToolUseID: "c2", Name: "now", Input: json.RawMessage(`{}`)}},
				}},
				{Role: "user", Content: []bus.ContentBlock{
					{ToolResult: &bus.ToolResultBlock{ToolUseID: "c1", Content: []bus.ToolResultContent{{Text: "18 C"}}}},
					{ToolResult: &bus.ToolResultBlock{ToolUseID: "c2", Content: []bus.ToolResultContent{{Text: "12:00"}}}},
					{Text: "and tomorrow?"},
				}},
			}, ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{
				{ToolSpec: &bus.ToolSpec{Name: "get_weather", Description: "Weather of a city", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}},
				{ToolSpec: &bus.ToolSpec{Name: "now", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}},
			}, ToolChoice: &bus.ToolChoice{Tool: &bus.SpecificTool{Name: "now"}}, ParallelToolCalls: ptr(false)}}},
		{"thinking blocks sent back first in their turn", `{"model":"m","messages":[{"role":"user","content":"time?"},
			{"role":"assistant","content":"Checking.","thinking_blocks":[{"type":"thinking","thinking":"Need the clock.","signature":"sig"},{"type":"redacted_thinking","data":"AAH6"}],
				"tool_calls":[{"id":"c1","type":"function","function":{"name":"now","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"c1","content":"12:00"}],"tools":[{"type":"function","function":{"name":"now"}}]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "time?"}}},
				{Role: "assistant", Content: []bus.ContentBlock{
					{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "Need the clock.", Signature: "sig"}}},
					{ReasoningContent: &bus.ReasoningBlock{RedactedContent: []byte{0, 1, 250}}},
					{Text: "Checking."},
					{ToolUse: &bus.ToolUseBlock{ToolUseID: "c1", Name: "now", Input: json.RawMessage(`{}`)}},
				}},
				{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "c1", Content: []bus.ToolResultContent{{Text: "12:00"}}}}}},
			}, ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "now", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}}}}}},
		{"parallel_tool_calls without tools is ignored", `{"model":"m","messages":[{"role":"user","content":"x"}],"parallel_tool_calls":true}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}}},
		{"tool choice modes", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "f", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}}},
					ToolChoice: &bus.ToolChoice{Any: &struct{}{}}}}},
		{"json schema output", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","description":"a person","schema":{"type":"object","properties":{"name":{"type":"string"}}},"strict":true}}}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				OutputConfig: &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: "json_schema", Structure: &bus.OutputStructure{JSONSchema: &bus.JSONSchemaDefinition{
					Schema: `{"type":"object","properties":{"name":{"type":"string"}}}`, Name: "person", Description: "a person", Strict: ptr(true)}}}}}},
		{"image parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/jpg;base64,/9j/4A==","detail":"low"}},{"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGRg"}}]}]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
				{Text: "what is this?"},
				{Image: &bus.ImageBlock{Format: "jpeg", Source: bus.ImageSource{Bytes: []byte{0xff, 0xd8, 0xff, 0xe0}}}},
				{Image: &bus.ImageBlock{Format: "webp", Source: bus.ImageSource{Bytes: []byte("RIFF")}}},
			}}}}},
		{"image at a URL", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
				{Image: &bus.ImageBlock{Source: bus.ImageSource{URL: "https://example.com/cat.png"}}},
			}}}}},
		{"json object output", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				OutputConfig: &bus.OutputConfig{TextFormat: &bus.OutputFormat{Type: "json_object"}}}},
		{"max_completion_tokens wins, stop array", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9,"stop":["a","b"],"n":1}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				InferenceConfig: &bus.InferenceConfig{MaxTokens: 9, StopSequences: []string{"a", "b"}}}},
		{"seed and penalties", `{"model":"m","messages":[{"role":"user","content":"x"}],"seed":42,"presence_penalty":0.5,"frequency_penalty":-1}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				InferenceConfig: &bus.InferenceConfig{Seed: ptr(int64(42)), PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(-1.0)}}},
		{"reasoning effort", `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"xhigh"}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}, ReasoningEffort: "xhigh"}},
		{"reasoning effort null", `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":null}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}}},
		{"logit bias and verbosity", `{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":-100,"1734":2.5,"0":100},"verbosity":"low"}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				OpenAIParams: &bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100, "1734": 2.5, "0": 100}, Verbosity: "low"}}},
		{"hints", `{"model":"m","messages":[{"role":"user","content":"x"}],"user":"end-user-7","safety_identifier":"h4sh","prompt_cache_key":"prefix-7","service_tier":"flex"}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				OpenAIParams: &bus.OpenAIParams{User: "end-user-7", SafetyIdentifier: "h4sh", PromptCacheKey: "prefix-7", ServiceTier: "flex"}}},
		{"each verbosity and service tier", `{"model":"m","messages":[{"role":"user","content":"x"}],"verbosity":"high","service_tier":"priority"}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}},
				OpenAIParams: &bus.OpenAIParams{Verbosity: "high", ServiceTier: "priority"}}},
		{"empty and null OpenAI parameters set none", `{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{},"verbosity":null,"user":"","service_tier":null}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}}},
		{"cache_control becomes cache points", `{"model":"m","messages":[
			{"role":"system","content":[{"type":"text","text":"rules","cache_control":{"type":"ephemeral"}},{"type":"text","text":"more","cache_control":null}]},
			{"role":"developer","content":"plain"},
			{"role":"user","content":[{"type":"text","text":"doc","cache_control":{"type":"ephemeral","ttl":"1h"}},{"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGRg"},"cache_control":{"type":"ephemeral"}},{"type":"text","text":"q"}]},
			{"role":"assistant","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral","ttl":"5m"}}],"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r","cache_control":{"type":"ephemeral"}}]},
			{"role":"user","content":"again"}],
			"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}},{"type":"function","function":{"name":"g"},"cache_control":null}]}`,
			bus.ChatRequest{ModelID: "m", System: []bus.ContentBlock{{Text: "rules"}, {CachePoint: &bus.CachePoint{Type: "default"}}, {Text: "more"}, {Text: "plain"}},
				Messages: []bus.Message{
					{Role: "user", Content: []bus.ContentBlock{{Text: "doc"}, {CachePoint: &bus.CachePoint{Type: "default", TTL: "1h"}},
						{Image: &bus.ImageBlock{Format: "webp", Source: bus.ImageSource{Bytes: []byte("RIFF")}}}, {CachePoint: &bus.CachePoint{Type: "default"}}, {Text: "q"}}},
					{Role: "assistant", Content: []bus.ContentBlock{{Text: "a"}, {CachePoint: &bus.CachePoint{Type: "default", TTL: "5m"}},
						{ToolUse: &bus.ToolUseBlock{ToolUseID: "c1", Name: "f", Input: json.RawMessage(`{}`)}}}},
					{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "c1", Content: []bus.ToolResultContent{{Text: "r"}}}},
						{CachePoint: &bus.CachePoint{Type: "default"}}, {Text: "again"}}},
				}, ToolConfig: &bus.ToolConfig{Tools: []bus.Tool{
					{ToolSpec: &bus.ToolSpec{Name: "f", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}},
					{CachePoint: &bus.CachePoint{Type: "default"}},
					{ToolSpec: &bus.ToolSpec{Name: "g", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object","properties":{}}`)}}},
				}}}},
		{"store and metadata are not passed on", `{"model":"m","messages":[{"role":"user","content":"x"}],"store":true,"metadata":{"team":"a"},"logit_bias":null}`,
			bus.ChatRequest{ModelID: "m", Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}}}}}},
	}
	for _, tc := range ok {
		var r oaChatRequest
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		got, aerr := r.toChatRequest()
		if aerr != nil {
			t.Fatalf("%s: %+v", tc.name, aerr.body)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tc.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, g, w)
		}
	}
	bad := []struct{ body, param string }{
		{`{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"m","messages":[{"role":"system","content":"only system"}]}`, "messages"},
		{`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{`{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c9","content":"r"}]}`, "messages[1].tool_call_id"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}},{"id":"c2","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":"y"}]}`, "messages[3]"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"tool","tool_call_id":"c1","content":"again"}]}`, "messages[3].tool_call_id"},
		{`{"model":"m","messages":[{"role":"user","content":"x","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[0].tool_calls"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}`, "messages[1].tool_calls[0].id"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{}}]}]}`, "messages[1].tool_calls[0].function.name"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]}`, "messages[1].tool_calls[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":"x","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]}]}`, "messages[0].thinking_blocks"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"thinking","thinking":"t"}]},{"role":"user","content":"y"}]}`, "messages[1].thinking_blocks[0].signature"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"thinking","signature":"s"}]},{"role":"user","content":"y"}]}`, "messages[1].thinking_blocks[0].thinking"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"redacted_thinking","data":"!!"}]},{"role":"user","content":"y"}]}`, "messages[1].thinking_blocks[0].data"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"redacted_thinking"}]},{"role":"user","content":"y"}]}`, "messages[1].thinking_blocks[0].data"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a","thinking_blocks":[{"type":"reasoning","thinking":"t"}]},{"role":"user","content":"y"}]}`, "messages[1].thinking_blocks[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}`, "tool_choice"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"description":"d"}}]}`, "tools[0].function.name"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}`, "tools[0].function.parameters"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, "tool_choice"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice.function.name"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}}`, "response_format.type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":"json"}`, "response_format"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, "response_format.json_schema.name"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}`, "response_format.json_schema.name"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":true}}}`, "response_format.json_schema.schema"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true}`, "logprobs"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"presence_penalty":2.5}`, "presence_penalty"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"frequency_penalty":-3}`, "frequency_penalty"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":3}`, "top_logprobs"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]}`, "functions"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"function_call":"auto"}`, "function_call"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"audio":{"voice":"alloy","format":"wav"}}`, "audio"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"modalities":["text","audio"]}`, "modalities"},
		{`{"model":"m","messages":[{"role":"user","content":null}]}`, "messages[0].content"},
		{`{"model":"m","messages":[{"role":"user","content":"  "}]}`, "messages[0].content"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "messages[0].content[0].image_url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"ftp://example.com/cat.png"}}]}]}`, "messages[0].content[1].image_url.url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AAAA"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,AAAA"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!!"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, "messages[0].content[0].text"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}`, "n"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"text","text":"y","cache_control":{"type":"persistent"}}]}]}`, "messages[0].content[1].cache_control.type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"y","cache_control":{}}]}]}`, "messages[2].content[0].cache_control.type"},
		{`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s","cache_control":"ephemeral"}]},{"role":"user","content":"x"}]}`, "messages[0].content[0].cache_control"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"2h"}}]}]}`, "messages[0].content[0].cache_control.ttl"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r","cache_control":{"type":"x"}}]}],"tools":[{"type":"function","function":{"name":"f"}}]}`, "messages[2].content[0].cache_control.type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g"},"cache_control":{"type":"default"}}]}`, "tools[1].cache_control.type"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}`, "reasoning_effort"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"High"}`, "reasoning_effort"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":[1]}`, "logit_bias"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":"50256:-100"}`, "logit_bias"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"hello":1}}`, `logit_bias["hello"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"-5":1}}`, `logit_bias["-5"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"123":101}}`, `logit_bias["123"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"123":-100.5}}`, `logit_bias["123"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"123":"5"}}`, `logit_bias["123"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"123":null}}`, `logit_bias["123"]`},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":` + manyLogitBias(bus.MaxLogitBiasEntries+1) + `}`, "logit_bias"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"verbosity":"terse"}`, "verbosity"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"verbosity":"Low"}`, "verbosity"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"service_tier":"turbo"}`, "service_tier"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"user":"` + strings.Repeat("u", bus.MaxOpenAIUserBytes+1) + `"}`, "user"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"safety_identifier":"` + strings.Repeat("s", bus.MaxOpenAIUserBytes+1) + `"}`, "safety_identifier"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"prompt_cache_key":"` + strings.Repeat("k", bus.MaxPromptCacheKeyBytes+1) + `"}`, "prompt_cache_key"},
	}
	for _, tc := range bad {
		var r oaChatRequest
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		_, aerr := r.toChatRequest()
		if aerr == nil || aerr.status != 400 || aerr.body.Param == nil || *aerr.body.Param != tc.param || !strings.Contains(aerr.body.Message, tc.param) {
			t.Errorf("%s: got %+v, want 400 naming %s", tc.body, aerr, tc.param)
		}
	}
	// A logit_bias at the limits passes; the refusals of the OpenAI
	// parameters say what is accepted.
	var full oaChatRequest
	if err := json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":`+manyLogitBias(bus.MaxLogitBiasEntries)+`,"user":"`+
		strings.Repeat("u", bus.MaxOpenAIUserBytes)+`","prompt_cache_key":"`+strings.Repeat("k", bus.MaxPromptCacheKeyBytes)+`"}`), &full); err != nil {
		t.Fatal(err)
	}
	if got, aerr := full.toChatRequest(); aerr != nil || len(got.OpenAIParams.LogitBias) != bus.MaxLogitBiasEntries {
		t.Errorf("logit_bias of %d entries: %+v", bus.MaxLogitBiasEntries, aerr)
	}
	for _, tc := range []struct{ body, want string }{
		{`"logit_bias":{"123":101}`, `logit_bias["123"] is 101; it must be within -100..100`},
		{`"logit_bias":{"123":"5"}`, `logit_bias["123"] must be a number within -100..100`},
		{`"logit_bias":{"x1":5}`, `logit_bias["x1"] is not a token id: keys are decimal token ids, e.g. "50256"`},
		{`"logit_bias":[1]`, `logit_bias must be an object of token ids to numbers`},
		{`"logit_bias":` + manyLogitBias(301), `logit_bias has 301 entries, more than the limit of 300`},
		{`"verbosity":"terse"`, `verbosity "terse" is not supported; use low, medium, high`},
		{`"service_tier":"turbo"`, `service_tier "turbo" is not supported; use auto, default, flex, scale, priority, fast`},
		{`"user":"` + strings.Repeat("u", 300) + `"`, `user is 300 bytes, more than the limit of 256`},
	} {
		var r oaChatRequest
		if err := json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],`+tc.body+`}`), &r); err != nil {
			t.Fatal(err)
		}
		if _, aerr := r.toChatRequest(); aerr == nil || !strings.HasPrefix(aerr.body.Message, tc.want) {
			t.Errorf("%s: %+v, want %q", tc.body, aerr, tc.want)
		}
	}
	// The refusal of a reasoning effort lists the accepted ones.
	r := oaChatRequest{Model: "m", Messages: []oaInMessage{{Role: "user", Content: json.RawMessage(`"x"`)}}, ReasoningEffort: "extreme"}
	if _, aerr := r.toChatRequest(); aerr == nil || aerr.body.Message != `reasoning_effort "extreme" is not supported; use none, minimal, low, medium, high, xhigh, max` {
		t.Errorf("reasoning_effort extreme: %+v", aerr)
	}
}

func ptr[T any](v T) *T { return &v }

// manyLogitBias is a logit_bias object of n entries.
func manyLogitBias(n int) string {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf(`"%d":1`, i)
	}
	return "{" + strings.Join(entries, ",") + "}"
}

func TestOpenAIErrorMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ev         bus.ErrorEvent
		status     int
		retryAfter int64
	}{
		{bus.ErrorEvent{Type: bus.ErrTypeValidation}, 400, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeModelNotFound}, 404, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeForbidden}, 403, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeQuotaExceeded, Details: map[string]any{"retryAfterSeconds": float64(42)}}, 429, 42},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamThrottled}, 429, 1},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError}, 502, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError, Details: map[string]any{"upstreamStatus": float64(500)}}, 502, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError, Details: map[string]any{"upstreamStatus": float64(401)}}, 502, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError, Details: map[string]any{"upstreamStatus": float64(400)}}, 400, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeUpstreamError, Details: map[string]any{"upstreamStatus": float64(422)}}, 400, 0},
		{bus.ErrorEvent{Type: bus.ErrTypeInternal}, 503, 0},
	}
	for _, tc := range cases {
		a := oaFromEvent(&tc.ev)
		if a.status != tc.status || a.retryAfter != tc.retryAfter || a.body.Code != tc.ev.Type {
			t.Errorf("%s: got %d retry %d code %q", tc.ev.Type, a.status, a.retryAfter, a.body.Code)
		}
	}
}

// fakeChat answers every INBOUND request of prefix on its Gh-Reply-To with
// events from script (given the decoded request), like chat does.
func fakeChat(t *testing.T, nc *nats.Conn, prefix string, script func(req bus.ChatRequest, reqID string) []bus.Event) {
	t.Helper()
	sub, err := nc.Subscribe(bus.NewSubjects(prefix).InboundAll(), func(m *nats.Msg) {
		req, err := bus.DecodeChatRequest(m.Data)
		if err != nil {
			return
		}
		reqID := m.Header.Get(bus.HeaderRequestID)
		for _, ev := range script(req, reqID) {
			ev.RequestID = reqID
			data, _ := json.Marshal(ev)
			_ = nc.Publish(m.Header.Get(bus.HeaderReplyTo), data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// numbered sets Seq on events in order.
func numbered(evs ...bus.Event) []bus.Event {
	for i := range evs {
		evs[i].Seq = i
	}
	return evs
}

func answerEvents(words ...string) []bus.Event {
	evs := []bus.Event{{MessageStart: &bus.MessageStart{Role: "assistant"}}}
	for _, w := range words {
		evs = append(evs, bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{Text: w}}})
	}
	evs = append(evs, bus.Event{ContentBlockStop: &bus.ContentBlockStop{}}, bus.Event{MessageStop: &bus.MessageStop{StopReason: "max_tokens"}},
		bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 3, OutputTokens: int64(len(words))}}})
	return numbered(evs...)
}

func (e *env) postOA(path, token, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.svc.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeOAError(t *testing.T, resp *http.Response) oaError {
	t.Helper()
	var body struct {
		Error oaError `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Error
}

const oaHello = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func TestOpenAIHandler(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	fakeChat(t, e.nc, "", func(req bus.ChatRequest, _ string) []bus.Event {
		switch req.Messages[0].Content[0].Text {
		case "quota":
			return numbered(bus.Event{Error: &bus.ErrorEvent{Type: bus.ErrTypeQuotaExceeded, Message: "quota exceeded", Details: map[string]any{"retryAfterSeconds": 42}}})
		case "gap":
			evs := answerEvents("a", "b")
			return append(evs[:1], evs[2:]...)
		case "guardrail":
			evs := answerEvents("blocked")[:2]
			return append(evs, bus.Event{Seq: 2, Error: &bus.ErrorEvent{Type: bus.ErrTypeGuardrailIntervened, Message: "blocked"}})
		case "tools", "tools only":
			evs := []bus.Event{{MessageStart: &bus.MessageStart{Role: "assistant"}}}
			if req.Messages[0].Content[0].Text == "tools" {
				evs = append(evs, bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{Text: "Let me check."}}})
			}
			start := func(i int, id, name string) bus.Event {
				return bus.Event{ContentBlockStart: &bus.ContentBlockStart{ContentBlockIndex: i, Start: bus.BlockStart{ToolUse: &bus.ToolUseStart{ToolUseID: id, Name: name}}}}
			}
			input := func(i int, s string) bus.Event {
				return bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{ContentBlockIndex: i, Delta: bus.Delta{ToolUse: &bus.ToolUseDelta{Input: s}}}}
			}
			evs = append(evs, start(1, "c1", "get_weather"), input(1, `{"city":`), input(1, `"Paris"}`), start(2, "c2", "now"), input(2, `{}`),
				bus.Event{ContentBlockStop: &bus.ContentBlockStop{ContentBlockIndex: 1}}, bus.Event{ContentBlockStop: &bus.ContentBlockStop{ContentBlockIndex: 2}},
				bus.Event{MessageStop: &bus.MessageStop{StopReason: "tool_use"}},
				bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 9, OutputTokens: 12, TotalTokens: 21}}})
			return numbered(evs...)
		case "no arguments":
			return numbered(bus.Event{MessageStart: &bus.MessageStart{Role: "assistant"}},
				bus.Event{ContentBlockStart: &bus.ContentBlockStart{Start: bus.BlockStart{ToolUse: &bus.ToolUseStart{ToolUseID: "c9", Name: "now"}}}},
				bus.Event{ContentBlockStop: &bus.ContentBlockStop{}},
				bus.Event{MessageStop: &bus.MessageStop{StopReason: "tool_use"}},
				bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 3, OutputTokens: 5, TotalTokens: 8}}})
		case "reason":
			think := func(s string) bus.Event {
				return bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{Delta: bus.Delta{ReasoningContent: &bus.ReasoningDelta{Text: s}}}}
			}
			return numbered(bus.Event{MessageStart: &bus.MessageStart{Role: "assistant"}}, think("Let me think."), think(" 2+2."),
				bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{ContentBlockIndex: 1, Delta: bus.Delta{Text: "4"}}},
				bus.Event{ContentBlockStop: &bus.ContentBlockStop{}}, bus.Event{ContentBlockStop: &bus.ContentBlockStop{ContentBlockIndex: 1}},
				bus.Event{MessageStop: &bus.MessageStop{StopReason: "end_turn"}},
				bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 3, OutputTokens: 9, TotalTokens: 12}}})
		case "signed reason":
			// Two signed reasoning blocks (0 and 2) around a redacted one (1),
			// then the text (3).
			think := func(block int, r bus.ReasoningDelta) bus.Event {
				return bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{ContentBlockIndex: block, Delta: bus.Delta{ReasoningContent: &r}}}
			}
			return numbered(bus.Event{MessageStart: &bus.MessageStart{Role: "assistant"}},
				think(0, bus.ReasoningDelta{Text: "Let me"}), think(0, bus.ReasoningDelta{Text: " think."}), think(0, bus.ReasoningDelta{Signature: "sig-A"}),
				bus.Event{ContentBlockStop: &bus.ContentBlockStop{}},
				think(1, bus.ReasoningDelta{RedactedContent: []byte{0, 1, 250}}),
				think(2, bus.ReasoningDelta{Text: "More."}), think(2, bus.ReasoningDelta{Signature: "sig-B"}),
				bus.Event{ContentBlockDelta: &bus.ContentBlockDelta{ContentBlockIndex: 3, Delta: bus.Delta{Text: "4"}}},
				bus.Event{MessageStop: &bus.MessageStop{StopReason: "end_turn"}},
				bus.Event{Metadata: &bus.Metadata{Usage: bus.Usage{InputTokens: 3, OutputTokens: 9, TotalTokens: 12}}})
		case "midstream":
			evs := answerEvents("a", "b")[:3]
			return append(evs, bus.Event{Seq: 3, Error: &bus.ErrorEvent{Type: bus.ErrTypeUpstreamThrottled, Message: "slow down"}})
		}
		return answerEvents("Hel", "lo")
	})

	// Non-streaming, with an API key.
	req, _ := http.NewRequest(http.MethodPost, e.svc.URL()+PathChatCompletions, strings.NewReader(oaHello))
	req.Header.Set("x-api-key", "key-alice")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var c oaCompletion
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d err %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if c.Choices[0].Message.Content == nil || *c.Choices[0].Message.Content != "Hello" || c.Choices[0].FinishReason != "length" || c.Usage.TotalTokens != 5 || c.ID != "chatcmpl-"+resp.Header.Get("X-Request-Id") {
		t.Fatalf("completion %+v", c)
	}

	// Streaming with usage: exact SSE lines.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := sseLines(resp)
	if len(lines) != 6 || lines[5] != "data: [DONE]" || !strings.Contains(lines[0], `"delta":{"role":"assistant","content":""}`) ||
		!strings.Contains(lines[1], `"content":"Hel"`) || !strings.Contains(lines[3], `"finish_reason":"length"`) ||
		!strings.Contains(lines[4], `"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}`) {
		t.Fatalf("stream:\n%s", strings.Join(lines, "\n"))
	}

	// Tool calls, streamed: OpenAI's tool_calls deltas, exact lines.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"tools"}]}`)
	lines = sseLines(resp)
	wantDeltas := []string{
		`{"role":"assistant","content":""}`,
		`{"content":"Let me check."}`,
		`{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`,
		`{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"now","arguments":""}}]}`,
		`{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}`,
		`{},"logprobs":null,"finish_reason":"tool_calls"`,
	}
	if len(lines) != len(wantDeltas)+1 || lines[len(lines)-1] != "data: [DONE]" {
		t.Fatalf("tool stream:\n%s", strings.Join(lines, "\n"))
	}
	for i, d := range wantDeltas {
		if !strings.Contains(lines[i], `"delta":`+d) {
			t.Fatalf("tool stream line %d:\n%s\nwant delta %s", i, lines[i], d)
		}
	}
	// Tool calls, not streamed: message.tool_calls, content null when
	// the answer has no text.
	for _, prompt := range []string{"tools", "tools only"} {
		resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"`+prompt+`"}]}`)
		raw, _ := io.ReadAll(resp.Body)
		var tc oaCompletion
		if err := json.Unmarshal(raw, &tc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", prompt, resp.StatusCode, raw)
		}
		msg := tc.Choices[0].Message
		wantCalls := []oaToolCall{
			{ID: "c1", Type: "function", Function: oaFunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{ID: "c2", Type: "function", Function: oaFunctionCall{Name: "now", Arguments: `{}`}},
		}
		if g, w := fmt.Sprint(msg.ToolCalls), fmt.Sprint(wantCalls); g != w || tc.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("%s: tool calls %s finish %s, want %s", prompt, g, tc.Choices[0].FinishReason, w)
		}
		if prompt == "tools" && (msg.Content == nil || *msg.Content != "Let me check.") {
			t.Fatalf("%s: content %s", prompt, raw)
		}
		if prompt == "tools only" && !strings.Contains(string(raw), `"content":null`) {
			t.Fatalf("%s: content not null: %s", prompt, raw)
		}
	}

	// A call whose input never came has arguments "{}", streamed (at
	// its block's stop) and not.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"no arguments"}]}`)
	all, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(all), `"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}`) {
		t.Fatalf("streamed call without arguments:\n%s", all)
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"no arguments"}]}`)
	all, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(all), `"tool_calls":[{"id":"c9","type":"function","function":{"name":"now","arguments":"{}"}}]`) {
		t.Fatalf("call without arguments: %s", all)
	}

	// Reasoning, streamed as reasoning_content deltas before the content,
	// and in message.reasoning_content when not streamed.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"reason"}]}`)
	lines = sseLines(resp)
	wantDeltas = []string{`{"role":"assistant","content":""}`, `{"reasoning_content":"Let me think."}`, `{"reasoning_content":" 2+2."}`, `{"content":"4"}`, `{},"logprobs":null,"finish_reason":"stop"`}
	if len(lines) != len(wantDeltas)+1 {
		t.Fatalf("reasoning stream:\n%s", strings.Join(lines, "\n"))
	}
	for i, d := range wantDeltas {
		if !strings.Contains(lines[i], `"delta":`+d) {
			t.Fatalf("reasoning stream line %d:\n%s\nwant delta %s", i, lines[i], d)
		}
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"reason"}]}`)
	raw, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), `"message":{"role":"assistant","content":"4","reasoning_content":"Let me think. 2+2.","refusal":null}`) {
		t.Fatalf("reasoning, not streamed: %s", raw)
	}

	// Signed and redacted reasoning: each block whole in thinking_blocks
	// once it ends (streamed: in the delta that ends it), to send back.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"signed reason"}]}`)
	lines = sseLines(resp)
	wantDeltas = []string{
		`{"role":"assistant","content":""}`,
		`{"reasoning_content":"Let me"}`,
		`{"reasoning_content":" think."}`,
		`{"thinking_blocks":[{"type":"thinking","thinking":"Let me think.","signature":"sig-A"}]}`,
		`{"thinking_blocks":[{"type":"redacted_thinking","data":"AAH6"}]}`,
		`{"reasoning_content":"More."}`,
		`{"thinking_blocks":[{"type":"thinking","thinking":"More.","signature":"sig-B"}]}`,
		`{"content":"4"}`,
		`{},"logprobs":null,"finish_reason":"stop"`,
	}
	if len(lines) != len(wantDeltas)+1 {
		t.Fatalf("signed reasoning stream:\n%s", strings.Join(lines, "\n"))
	}
	for i, d := range wantDeltas {
		if !strings.Contains(lines[i], `"delta":`+d) {
			t.Fatalf("signed reasoning stream line %d:\n%s\nwant delta %s", i, lines[i], d)
		}
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"signed reason"}]}`)
	raw, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), `"message":{"role":"assistant","content":"4","reasoning_content":"Let me think.More.","thinking_blocks":[`+
		`{"type":"thinking","thinking":"Let me think.","signature":"sig-A"},{"type":"redacted_thinking","data":"AAH6"},`+
		`{"type":"thinking","thinking":"More.","signature":"sig-B"}],"refusal":null}`) {
		t.Fatalf("signed reasoning, not streamed: %s", raw)
	}

	// Quota refusal: 429 with Retry-After.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"quota"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "42" || oe.Code != bus.ErrTypeQuotaExceeded {
		t.Fatalf("quota: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), oe)
	}
	if id := resp.Header.Get("X-Request-Id"); !bus.ValidToken(id) {
		t.Fatalf("quota refusal's X-Request-Id %q, want the request id", id)
	}
	// Lost events are detected.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"gap"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 502 || !strings.Contains(oe.Message, "lost") {
		t.Fatalf("gap: %d %+v", resp.StatusCode, oe)
	}
	// An error after the first chunk is an SSE error event.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","stream":true,"messages":[{"role":"user","content":"midstream"}]}`)
	all, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(all), `data: {"error":{"message":"slow down`) || strings.Contains(string(all), "[DONE]") {
		t.Fatalf("midstream: %d %s", resp.StatusCode, all)
	}
	// A guardrail intervention is finish_reason content_filter.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"guardrail"}]}`)
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 || c.Choices[0].FinishReason != "content_filter" || c.Choices[0].Message.Content == nil || *c.Choices[0].Message.Content != "blocked" {
		t.Fatalf("guardrail: %d %+v %v", resp.StatusCode, c, err)
	}
	// Bad credentials, bad JSON, too big.
	resp = e.postOA(PathChatCompletions, "nobody", oaHello)
	if oe := decodeOAError(t, resp); resp.StatusCode != 401 || oe.Code != "invalid_api_key" {
		t.Fatalf("401: %d %+v", resp.StatusCode, oe)
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 400 || oe.Type != "invalid_request_error" {
		t.Fatalf("bad JSON: %d %+v", resp.StatusCode, oe)
	}
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"`+strings.Repeat("x", int(e.svc.openAIBodyLimit()))+`"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 413 || !strings.Contains(oe.Message, "limit") {
		t.Fatalf("too big: %d %+v", resp.StatusCode, oe)
	}
	// Within the read limit, beyond what INBOUND stores: 413, not a
	// failed store.
	resp = e.postOA(PathChatCompletions, "alice", `{"model":"m","messages":[{"role":"user","content":"`+strings.Repeat("x", e.svc.maxRequest+1)+`"}]}`)
	if oe := decodeOAError(t, resp); resp.StatusCode != 413 || !strings.Contains(oe.Message, "as stored for chat") || oe.Code != "request_too_large" {
		t.Fatalf("too big to store: %d %+v", resp.StatusCode, oe)
	}
	// No chat service answering the catalog: 503.
	req, _ = http.NewRequest(http.MethodGet, e.svc.URL()+PathModels, nil)
	req.Header.Set("Authorization", "alice")
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if oe := decodeOAError(t, resp); resp.StatusCode != 503 || oe.Code != "service_unavailable" {
		t.Fatalf("models: %d %+v", resp.StatusCode, oe)
	}
	resp.Body.Close()
}

// TestOpenAIForbidden runs an edge whose authz denies mallory's publishes:
// the API answers 403 and nothing reaches INBOUND.
func TestOpenAIForbidden(t *testing.T) {
	t.Parallel()
	const prefix = "oa403"
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := bus.NewSubjects(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, subj, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := micro.AddService(nc, micro.Config{Name: "authz-deny", Version: "0.0.1", QueueGroup: bus.QueueAuthz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	_ = svc.AddEndpoint("verify", micro.HandlerFunc(func(r micro.Request) {
		bus.Respond(r, bus.VerifyResponse{Identity: identity.Identity{Sub: "mallory", Issuer: "test", ChannelID: "mallory", Kind: identity.KindUser}})
	}), micro.WithEndpointSubject(subj.AuthzVerify()))
	_ = svc.AddEndpoint("check", micro.HandlerFunc(func(r micro.Request) {
		bus.Respond(r, bus.CheckResponse{Allow: false, Reason: "mallory may not publish"})
	}), micro.WithEndpointSubject(subj.AuthzCheck()))
	edgeSvc, err := New(Config{Prefix: prefix, Addr: "127.0.0.1:0", DevTLSDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}, natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, nc: nc, js: js, svc: edgeSvc, done: make(chan error, 1)}
	e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}, Timeout: testTimeout}
	runWith(t, e)

	resp := e.postOA(PathChatCompletions, "mallory", oaHello)
	if oe := decodeOAError(t, resp); resp.StatusCode != 403 || oe.Code != "forbidden" || !strings.Contains(oe.Message, "may not publish") {
		t.Fatalf("403: %d %+v", resp.StatusCode, oe)
	}
	info, err := js.Stream(ctx, subj.StreamInbound())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := info.Info(ctx); st.State.Msgs != 0 {
		t.Fatalf("%d messages reached INBOUND", st.State.Msgs)
	}
}

// sseLines reads an SSE response to its end and returns its non-empty
// lines.
func sseLines(resp *http.Response) []string {
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
