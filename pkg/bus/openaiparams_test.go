package bus_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// TestOpenAIParamsValidate: each limit refuses naming the field in both
// vocabularies, a logit_bias entry by its key; values at the limits pass.
func TestOpenAIParamsValidate(t *testing.T) {
	t.Parallel()
	full := make(map[string]float64, bus.MaxLogitBiasEntries+1)
	for i := range bus.MaxLogitBiasEntries {
		full[fmt.Sprint(i)] = 1
	}
	for _, tc := range []struct {
		name string
		p    *bus.OpenAIParams
		want string // the error, naming the field as OpenAI's API does; "" = valid
		bus  string // the field as the bus names it
	}{
		{"nil", nil, "", ""},
		{"at the limits", &bus.OpenAIParams{LogitBias: full, Verbosity: "high", ServiceTier: "fast",
			User: strings.Repeat("u", bus.MaxOpenAIUserBytes), SafetyIdentifier: strings.Repeat("s", bus.MaxOpenAIUserBytes),
			PromptCacheKey: strings.Repeat("k", bus.MaxPromptCacheKeyBytes)}, "", ""},
		{"bias extremes", &bus.OpenAIParams{LogitBias: map[string]float64{"0": -100, "4294967295": 100}}, "", ""},
		{"too many", &bus.OpenAIParams{LogitBias: func() map[string]float64 {
			m := map[string]float64{"999999": 0}
			for k := range full {
				m[k] = 0
			}
			return m
		}()},
			"logit_bias has 301 entries, more than the limit of 300", "logitBias"},
		{"word key", &bus.OpenAIParams{LogitBias: map[string]float64{"hello": 1}}, `logit_bias["hello"] is not a token id`, `logitBias["hello"]`},
		{"negative key", &bus.OpenAIParams{LogitBias: map[string]float64{"-1": 1}}, `logit_bias["-1"] is not a token id`, `logitBias["-1"]`},
		{"huge key", &bus.OpenAIParams{LogitBias: map[string]float64{"4294967296": 1}}, `logit_bias["4294967296"] is not a token id`, `logitBias["4294967296"]`},
		{"empty key", &bus.OpenAIParams{LogitBias: map[string]float64{"": 1}}, `logit_bias[""] is not a token id`, `logitBias[""]`},
		{"too high", &bus.OpenAIParams{LogitBias: map[string]float64{"7": 100.5}}, `logit_bias["7"] is 100.5; it must be within -100..100`, `logitBias["7"]`},
		{"too low", &bus.OpenAIParams{LogitBias: map[string]float64{"7": -101}}, `logit_bias["7"] is -101; it must be within -100..100`, `logitBias["7"]`},
		{"verbosity", &bus.OpenAIParams{Verbosity: "terse"}, `verbosity "terse" is not supported; use low, medium, high`, "verbosity"},
		{"service tier", &bus.OpenAIParams{ServiceTier: "Flex"}, `service_tier "Flex" is not supported; use auto, default, flex, scale, priority, fast`, "serviceTier"},
		{"user", &bus.OpenAIParams{User: strings.Repeat("u", bus.MaxOpenAIUserBytes+1)}, "user is 257 bytes, more than the limit of 256", "user"},
		{"safety identifier", &bus.OpenAIParams{SafetyIdentifier: strings.Repeat("s", bus.MaxOpenAIUserBytes+1)}, "safety_identifier is 257 bytes", "safetyIdentifier"},
		{"prompt cache key", &bus.OpenAIParams{PromptCacheKey: strings.Repeat("k", bus.MaxPromptCacheKeyBytes+1)}, "prompt_cache_key is 1025 bytes, more than the limit of 1024", "promptCacheKey"},
	} {
		err := tc.p.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want) || err.Param(err.BusField) != tc.bus):
			t.Errorf("%s: %v, want %q on the bus as %s", tc.name, err, tc.want, tc.bus)
		}
	}
}

// TestOpenAIParamsAnswerParams: only logit_bias and verbosity change the
// answer.
func TestOpenAIParamsAnswerParams(t *testing.T) {
	t.Parallel()
	var none *bus.OpenAIParams
	if got := none.AnswerParams(); got != nil || !none.IsZero() {
		t.Fatalf("nil: %v", got)
	}
	hints := &bus.OpenAIParams{User: "u", SafetyIdentifier: "s", PromptCacheKey: "k", ServiceTier: "flex", LogitBias: map[string]float64{}}
	if got := hints.AnswerParams(); got != nil || hints.IsZero() {
		t.Fatalf("hints: %v", got)
	}
	both := &bus.OpenAIParams{LogitBias: map[string]float64{"1": 1}, Verbosity: "low"}
	if got := fmt.Sprint(both.AnswerParams()); got != "[logit_bias verbosity]" {
		t.Fatalf("both: %s", got)
	}
}
