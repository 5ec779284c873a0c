package chat_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestModelRequestFields: a model's configured request fields reach its
// upstream, as top-level fields of an OpenAI-compatible request and as
// Bedrock's additionalModelRequestFields; fields Gatehouse sets, echo and
// anything but an object are configuration errors naming the model.
func TestModelRequestFields(t *testing.T) {
	t.Parallel()
	oai := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(oai.Close)
	bedrock := providertest.NewBedrock(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(bedrock.Close)

	ocfg := openAIConfig(oai)
	ocfg.Models[0].RequestFields = json.RawMessage(`{"top_k":20,"chat_template_kwargs":{"enable_thinking":false}}`)
	bcfg := bedrockConfig(bedrock)
	bcfg.Models[0].RequestFields = json.RawMessage(`{"thinking":{"type":"enabled","budget_tokens":1024}}`)
	for _, tc := range []struct {
		name, model string
		cfg         chat.Config
		requests    func() []providertest.Request
		field, want string
	}{
		{"openai", "gpt", ocfg, oai.Requests, "chat_template_kwargs", `{"enable_thinking":false}`},
		{"bedrock", "claude", bcfg, bedrock.Requests, "additionalModelRequestFields", `{"thinking":{"budget_tokens":1024,"type":"enabled"}}`},
	} {
		h := newHarness(t, tc.cfg, contractOpts{})
		lee := user("lee-" + tc.name)
		sub := h.listen(h.subj.Outbound(lee.ChannelID))
		h.publish(lee, "rf-"+tc.name, modelRequest(tc.model, "hello"), nil)
		checkAnswer(t, answer(t, sub), "rf-"+tc.name, "conv-1", "ab", "end_turn")
		reqs := tc.requests()
		body := reqs[len(reqs)-1].Body
		if got, _ := json.Marshal(body[tc.field]); string(got) != tc.want {
			t.Fatalf("%s: upstream %s = %s, want %s", tc.name, tc.field, got, tc.want)
		}
		if tc.name == "openai" && (body["top_k"] != float64(20) || body["model"] != "gpt-4o-mini" || body["stream"] != true) {
			t.Fatalf("openai body %v", body)
		}
	}

	for _, tc := range []struct {
		name   string
		model  int
		fields string
		want   string
	}{
		{"reserved", 0, `{"stream":false}`, `Models[0].RequestFields sets "stream", which Gatehouse sets itself`},
		{"reserved: a request's openaiParams", 0, `{"service_tier":"flex"}`, `Models[0].RequestFields sets "service_tier", which Gatehouse sets itself`},
		{"reserved: logit_bias", 0, `{"logit_bias":{"1":5}}`, `Models[0].RequestFields sets "logit_bias", which Gatehouse sets itself`},
		{"echo", 1, `{"top_k":1}`, "Models[1].RequestFields is set, but echo takes no request fields"},
		{"not an object", 0, `[1,2]`, "Models[0].RequestFields must be a JSON object"},
	} {
		cfg := openAIConfig(oai)
		cfg.Models[tc.model].RequestFields = json.RawMessage(tc.fields)
		if err := cfg.Validate(); !errors.Is(err, chat.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
