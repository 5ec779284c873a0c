package chat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// withEffort asks for a reasoning effort.
func withEffort(e string) func(*bus.ChatRequest) {
	return func(r *bus.ChatRequest) { r.ReasoningEffort = e }
}

// effortConfig is a catalog of an OpenAI-compatible server (oai) and
// Bedrock (br): gpt passes efforts through, gpt-mapped maps xhigh, claude
// maps low and high over its request fields, nova maps nothing.
func effortConfig(oai *providertest.OpenAI, br *providertest.Bedrock) chat.Config {
	cfg := bedrockConfig(br)
	cfg.Providers = append(cfg.Providers, chat.ProviderConfig{Name: "oa", Type: chat.ProviderTypeOpenAI, BaseURL: oai.URL})
	model := func(id, provider, upstream string) chat.Model {
		return chat.Model{ID: id, Provider: provider, UpstreamModel: upstream, DefaultMaxTokens: 100, MaxTokens: 1000}
	}
	gptMapped := model("gpt-mapped", "oa", "gpt-5")
	gptMapped.RequestFields = json.RawMessage(`{"top_k":20}`)
	gptMapped.ReasoningEffort = map[string]json.RawMessage{"xhigh": json.RawMessage(`{"reasoning_effort":"high","top_k":40}`)}
	claude := model("claude-think", "br", "anthropic.claude-think")
	claude.RequestFields = json.RawMessage(`{"top_k":50,"thinking":{"type":"disabled"}}`)
	claude.ReasoningEffort = map[string]json.RawMessage{
		"low":  json.RawMessage(`{"thinking":{"type":"enabled","budget_tokens":1024}}`),
		"high": json.RawMessage(`{"thinking":{"type":"enabled","budget_tokens":16384}}`),
	}
	cfg.Models = append(cfg.Models, model("gpt", "oa", "gpt-5"), gptMapped, claude, model("nova", "br", "amazon.nova-2"),
		chat.Model{ID: "echo", Provider: chat.ProviderEcho, DefaultMaxTokens: 100, MaxTokens: 1000})
	return cfg
}

// TestReasoningEffort: an effort reaches an OpenAI-compatible server as
// reasoning_effort, or as the fields the model maps it to (merged over
// its request fields, the mapping winning) on both providers; Bedrock
// without a mapping takes none and refuses anything else naming the
// model; echo accepts and ignores it; an unknown effort is refused.
func TestReasoningEffort(t *testing.T) {
	t.Parallel()
	oai := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(oai.Close)
	br := providertest.NewBedrock(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(br.Close)
	h := newHarness(t, effortConfig(oai, br), contractOpts{})
	kim := user("kim")
	sub := h.listen(h.subj.Outbound(kim.ChannelID))

	// ask sends a request and returns the upstream body it caused.
	ask := func(t *testing.T, reqID, model, effort string, requests func() []providertest.Request) map[string]any {
		t.Helper()
		before := len(requests())
		h.publish(kim, reqID, modelRequest(model, "think about "+reqID, withEffort(effort)), nil)
		checkAnswer(t, answer(t, sub), reqID, "conv-1", "ab", "end_turn")
		reqs := requests()
		if len(reqs) != before+1 {
			t.Fatalf("%s: %d upstream requests, want 1", reqID, len(reqs)-before)
		}
		return reqs[len(reqs)-1].Body
	}
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}

	for _, tc := range []struct {
		reqID, model, effort string
		requests             func() []providertest.Request
		field, want          string // a field of the upstream body and its JSON ("null": absent)
	}{
		{"oa-pass", "gpt", "high", oai.Requests, "reasoning_effort", `"high"`},
		{"oa-pass-none", "gpt", "none", oai.Requests, "reasoning_effort", `"none"`},
		{"oa-no-effort", "gpt", "", oai.Requests, "reasoning_effort", `null`},
		// A model's mapping replaces the plain reasoning_effort.
		{"oa-mapped", "gpt-mapped", "xhigh", oai.Requests, "reasoning_effort", `"high"`},
		{"oa-mapped-top-k", "gpt-mapped", "xhigh", oai.Requests, "top_k", `40`},
		// An effort the model does not map still passes through.
		{"oa-unmapped", "gpt-mapped", "low", oai.Requests, "reasoning_effort", `"low"`},
		{"br-mapped", "claude-think", "low", br.Requests, "additionalModelRequestFields", `{"thinking":{"budget_tokens":1024,"type":"enabled"},"top_k":50}`},
		{"br-mapped-high", "claude-think", "high", br.Requests, "additionalModelRequestFields", `{"thinking":{"budget_tokens":16384,"type":"enabled"},"top_k":50}`},
		{"br-unmapped-none", "nova", "none", br.Requests, "additionalModelRequestFields", `null`},
		{"br-no-effort", "claude-think", "", br.Requests, "additionalModelRequestFields", `{"thinking":{"type":"disabled"},"top_k":50}`},
	} {
		body := ask(t, tc.reqID, tc.model, tc.effort, tc.requests)
		if got := js(body[tc.field]); got != tc.want {
			t.Errorf("%s: upstream %s = %s, want %s (body %s)", tc.reqID, tc.field, got, tc.want, js(body))
		}
	}
	// The mapped OpenAI request holds reasoning_effort once, the mapping's.
	reqs := oai.Requests()
	for _, r := range reqs {
		if n := strings.Count(string(r.Raw), `"reasoning_effort"`); n > 1 {
			t.Fatalf("reasoning_effort sent %d times: %s", n, r.Raw)
		}
	}

	// Echo does no reasoning: any effort is accepted and ignored.
	h.publish(kim, "echo-effort", request("hello there", withEffort("xhigh")), nil)
	checkAnswer(t, answer(t, sub), "echo-effort", "conv-1", "hello there", "end_turn")

	before := len(br.Requests())
	h.refused(t, kim, "br-unmapped", modelRequest("nova", "think hard", withEffort("high")),
		`model nova (provider br) cannot take reasoning effort "high": configure chat.models[].reasoning_effort.high for it`)
	h.refused(t, kim, "br-unmapped-low", modelRequest("claude", "think a little", withEffort("minimal")),
		`model claude (provider br) cannot take reasoning effort "minimal": configure chat.models[].reasoning_effort.minimal`)
	h.refused(t, kim, "unknown", modelRequest("gpt", "think", withEffort("extreme")),
		`reasoningEffort "extreme" is not supported; use none, minimal, low, medium, high, xhigh, max`)
	h.refused(t, kim, "unknown-echo", request("think", withEffort("HIGH")), `reasoningEffort "HIGH" is not supported`)
	if n := len(br.Requests()); n != before {
		t.Fatalf("refused requests reached Bedrock %d times", n-before)
	}
}

// TestReasoningEffortFallback: a fallback that cannot take the effort is
// skipped. gpt fails; of its fallbacks nova (Bedrock, no mapping) cannot
// take "high" and claude-think can, so claude-think answers, called with
// its mapping, and nova is never called.
func TestReasoningEffortFallback(t *testing.T) {
	t.Parallel()
	h, failing, br := failingGPT(t, "nova", "claude-think")
	lou := user("lou")
	sub := h.listen(h.subj.Outbound(lou.ChannelID))
	h.publish(lou, "fb-high", modelRequest("gpt", "think hard", withEffort("high")), nil)
	checkAnswer(t, answer(t, sub), "fb-high", "conv-1", "ab", "end_turn")
	if got := paths(br.Requests()); strings.Join(got, " ") != "/model/anthropic.claude-think/converse-stream" {
		t.Fatalf("Bedrock was called at %v, want claude-think's model only", got)
	}
	if got, _ := json.Marshal(br.Requests()[0].Body["additionalModelRequestFields"]); string(got) != `{"thinking":{"budget_tokens":16384,"type":"enabled"},"top_k":50}` {
		t.Fatalf("claude-think's request fields %s", got)
	}
	if n := len(failing.Requests()); n != 2 {
		t.Fatalf("%d requests to gpt, want 2", n)
	}

	// Without an effort, nova is the first fallback that answers.
	h.publish(lou, "fb-none", modelRequest("gpt", "think again"), nil)
	checkAnswer(t, answer(t, sub), "fb-none", "conv-1", "ab", "end_turn")
	if got := paths(br.Requests()); len(got) != 2 || got[1] != "/model/amazon.nova-2/converse-stream" {
		t.Fatalf("Bedrock was called at %v, want nova second", got)
	}
}

// TestReasoningEffortConfig: mappings are checked like request fields and
// errors name the model and the effort.
func TestReasoningEffortConfig(t *testing.T) {
	t.Parallel()
	oai := providertest.NewOpenAI(providertest.Reply{})
	t.Cleanup(oai.Close)
	br := providertest.NewBedrock(providertest.Reply{})
	t.Cleanup(br.Close)
	idx := map[string]int{}
	for i, m := range effortConfig(oai, br).Models {
		idx[m.ID] = i
	}
	for _, tc := range []struct {
		name, model string
		effort      map[string]json.RawMessage
		fields      string // the model's RequestFields, when set
		want        string // after "Models[<index>]"; "" = valid
	}{
		{"unknown effort", "claude-think", map[string]json.RawMessage{"extreme": json.RawMessage(`{}`)},
			"", `.ReasoningEffort["extreme"]: "extreme" is not a reasoning effort; use none, minimal, low, medium, high, xhigh, max`},
		{"not an object", "nova", map[string]json.RawMessage{"low": json.RawMessage(`"low"`)},
			"", `.ReasoningEffort["low"] must be a JSON object`},
		{"echo", "echo", map[string]json.RawMessage{"low": json.RawMessage(`{"a":1}`)},
			"", `.ReasoningEffort["low"] is set, but echo takes no request fields`},
		{"reserved", "gpt", map[string]json.RawMessage{"high": json.RawMessage(`{"stream":false}`)},
			"", `.ReasoningEffort["high"] sets "stream", which Gatehouse sets itself`},
		{"reasoning_effort in a mapping", "gpt", map[string]json.RawMessage{"xhigh": json.RawMessage(`{"reasoning_effort":"high"}`)}, "", ""},
		{"reasoning_effort in request fields", "gpt", nil, `{"reasoning_effort":"high"}`,
			`.RequestFields sets "reasoning_effort", which Gatehouse sets itself`},
		{"bedrock mapping", "nova", map[string]json.RawMessage{"medium": json.RawMessage(`{"reasoningConfig":{"type":"enabled","maxReasoningEffort":"medium"}}`)}, "", ""},
	} {
		cfg := effortConfig(oai, br)
		m := &cfg.Models[idx[tc.model]]
		m.ReasoningEffort = tc.effort
		if tc.fields != "" {
			m.RequestFields = json.RawMessage(tc.fields)
		}
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, chat.ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprintf("Models[%d]%s", idx[tc.model], tc.want))):
			t.Errorf("%s: %v, want Models[%d]%s", tc.name, err, idx[tc.model], tc.want)
		}
	}
}

// failingGPT runs chat on effortConfig with gpt's upstream failing (HTTP
// 500) and fallbacks as gpt's fallbacks; Bedrock answers "ab".
func failingGPT(t *testing.T, fallbacks ...string) (*harness, *providertest.OpenAI, *providertest.Bedrock) {
	t.Helper()
	failing := providertest.NewOpenAI(providertest.Reply{Status: 500})
	t.Cleanup(failing.Close)
	br := providertest.NewBedrock(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(br.Close)
	cfg := effortConfig(failing, br)
	for i := range cfg.Models {
		if cfg.Models[i].ID == "gpt" {
			cfg.Models[i].Fallbacks = fallbacks
		}
	}
	return newHarness(t, cfg, contractOpts{}), failing, br
}
