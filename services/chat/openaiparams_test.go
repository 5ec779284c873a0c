package chat_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// withOpenAIParams sets a request's openaiParams.
func withOpenAIParams(p bus.OpenAIParams) func(*bus.ChatRequest) {
	return func(r *bus.ChatRequest) { r.OpenAIParams = &p }
}

// openAIHints sets every hint and nothing that changes the answer.
var openAIHints = bus.OpenAIParams{User: "end-user-7", SafetyIdentifier: "h4sh-7", PromptCacheKey: "prefix-7", ServiceTier: "flex"}

// openAIParamKeys are the upstream names of all of [bus.OpenAIParams].
var openAIParamKeys = []string{"logit_bias", "verbosity", "user", "safety_identifier", "prompt_cache_key", "service_tier"}

// TestOpenAIParams: an OpenAI-compatible server receives each of a
// request's openaiParams under OpenAI's name, and none when the request
// sets none; a Bedrock model takes the hints (and is not sent them) but is
// refused logit_bias and verbosity naming the model and the parameter;
// echo ignores them all; values out of bounds are refused naming the
// field on the bus.
func TestOpenAIParams(t *testing.T) {
	t.Parallel()
	oai := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(oai.Close)
	br := providertest.NewBedrock(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(br.Close)
	h := newHarness(t, effortConfig(oai, br), contractOpts{})
	ola := user("ola")
	sub := h.listen(h.subj.Outbound(ola.ChannelID))

	// ask sends a request that is answered "ab" and returns the upstream
	// request it caused.
	ask := func(t *testing.T, reqID, model string, p *bus.OpenAIParams, requests func() []providertest.Request) providertest.Request {
		t.Helper()
		before := len(requests())
		h.publish(ola, reqID, modelRequest(model, "say "+reqID, func(r *bus.ChatRequest) { r.OpenAIParams = p }), nil)
		checkAnswer(t, answer(t, sub), reqID, "conv-1", "ab", "end_turn")
		reqs := requests()
		if len(reqs) != before+1 {
			t.Fatalf("%s: %d upstream requests, want 1", reqID, len(reqs)-before)
		}
		return reqs[len(reqs)-1]
	}

	all := openAIHints
	all.LogitBias = map[string]float64{"50256": -100, "1734": 2.5}
	all.Verbosity = "low"
	body := ask(t, "oa-all", "gpt", &all, oai.Requests).Body
	got, _ := json.Marshal(map[string]any{
		"logit_bias": body["logit_bias"], "verbosity": body["verbosity"], "user": body["user"],
		"safety_identifier": body["safety_identifier"], "prompt_cache_key": body["prompt_cache_key"], "service_tier": body["service_tier"],
	})
	const want = `{"logit_bias":{"1734":2.5,"50256":-100},"prompt_cache_key":"prefix-7","safety_identifier":"h4sh-7","service_tier":"flex","user":"end-user-7","verbosity":"low"}`
	if string(got) != want {
		t.Fatalf("upstream got %s, want %s", got, want)
	}
	for _, tc := range []struct {
		reqID string
		p     *bus.OpenAIParams
	}{{"oa-none", nil}, {"oa-empty", &bus.OpenAIParams{LogitBias: map[string]float64{}}}} {
		body := ask(t, tc.reqID, "gpt", tc.p, oai.Requests).Body
		for _, k := range openAIParamKeys {
			if v, ok := body[k]; ok {
				t.Errorf("%s: upstream got %s %v", tc.reqID, k, v)
			}
		}
	}

	// Bedrock takes the hints and does not get them.
	raw := string(ask(t, "br-hints", "nova", &openAIHints, br.Requests).Raw)
	for _, v := range []string{openAIHints.User, openAIHints.SafetyIdentifier, openAIHints.PromptCacheKey, `"flex"`, "service_tier", "serviceTier", "additionalModelRequestFields"} {
		if strings.Contains(raw, v) {
			t.Errorf("Bedrock's request holds %s: %s", v, raw)
		}
	}

	// Echo ignores all of them.
	h.publish(ola, "echo-all", request("hello there", withOpenAIParams(all)), nil)
	checkAnswer(t, answer(t, sub), "echo-all", "conv-1", "hello there", "end_turn")

	before := len(br.Requests())
	h.refused(t, ola, "br-logit-bias", modelRequest("nova", "never say 50256", withOpenAIParams(bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100}})),
		"model nova (provider br) cannot take logit_bias")
	h.refused(t, ola, "br-verbosity", modelRequest("claude-think", "be short", withOpenAIParams(bus.OpenAIParams{Verbosity: "low", User: "u"})),
		"model claude-think (provider br) cannot take verbosity")
	if n := len(br.Requests()); n != before {
		t.Fatalf("refused requests reached Bedrock %d times", n-before)
	}

	beforeOA := len(oai.Requests())
	for _, tc := range []struct {
		name string
		p    bus.OpenAIParams
		want string
	}{
		{"word key", bus.OpenAIParams{LogitBias: map[string]float64{"hello": 1}}, `openaiParams.logitBias["hello"] is not a token id`},
		{"bias too high", bus.OpenAIParams{LogitBias: map[string]float64{"5": 200}}, `openaiParams.logitBias["5"] is 200; it must be within -100..100`},
		{"too many", bus.OpenAIParams{LogitBias: func() map[string]float64 {
			m := map[string]float64{}
			for i := range bus.MaxLogitBiasEntries + 1 {
				m[strconv.Itoa(i)] = 1
			}
			return m
		}()}, `openaiParams.logitBias has 301 entries, more than the limit of 300`},
		{"verbosity", bus.OpenAIParams{Verbosity: "loud"}, `openaiParams.verbosity "loud" is not supported; use low, medium, high`},
		{"service tier", bus.OpenAIParams{ServiceTier: "turbo"}, `openaiParams.serviceTier "turbo" is not supported`},
		{"user", bus.OpenAIParams{User: strings.Repeat("u", bus.MaxOpenAIUserBytes+1)}, "openaiParams.user is 257 bytes, more than the limit of 256"},
		{"safety identifier", bus.OpenAIParams{SafetyIdentifier: strings.Repeat("s", bus.MaxOpenAIUserBytes+1)}, "openaiParams.safetyIdentifier is 257 bytes"},
		{"prompt cache key", bus.OpenAIParams{PromptCacheKey: strings.Repeat("k", bus.MaxPromptCacheKeyBytes+1)}, "openaiParams.promptCacheKey is 1025 bytes, more than the limit of 1024"},
	} {
		h.refused(t, ola, "bad-"+strings.ReplaceAll(tc.name, " ", "-"), modelRequest("gpt", "bad "+tc.name, withOpenAIParams(tc.p)), tc.want)
	}
	if n := len(oai.Requests()); n != beforeOA {
		t.Fatalf("refused requests reached the OpenAI-compatible server %d times", n-beforeOA)
	}
}

// TestOpenAIParamsFallback: a fallback whose provider cannot take the
// request's logit_bias or verbosity is skipped; the hints skip nothing.
// gpt fails; of its fallbacks nova (Bedrock) cannot take logit_bias or
// verbosity and echo can.
func TestOpenAIParamsFallback(t *testing.T) {
	t.Parallel()
	h, _, br := failingGPT(t, "nova", "echo")
	lin := user("lin")
	sub := h.listen(h.subj.Outbound(lin.ChannelID))
	for _, tc := range []struct {
		name    string
		p       bus.OpenAIParams
		bedrock bool // nova answers; else echo does
	}{
		{"logit bias", bus.OpenAIParams{LogitBias: map[string]float64{"50256": -100}}, false},
		{"verbosity", bus.OpenAIParams{Verbosity: "high"}, false},
		{"hints", openAIHints, true},
	} {
		before := len(br.Requests())
		reqID := "fb-" + strings.ReplaceAll(tc.name, " ", "-")
		h.publish(lin, reqID, modelRequest("gpt", "say "+tc.name, withOpenAIParams(tc.p)), nil)
		want := "say " + tc.name
		if tc.bedrock {
			want = "ab"
		}
		checkAnswer(t, answer(t, sub), reqID, "conv-1", want, "end_turn")
		if n := len(br.Requests()) - before; n != map[bool]int{true: 1}[tc.bedrock] {
			t.Fatalf("%s: %d requests to Bedrock", tc.name, n)
		}
	}
}
