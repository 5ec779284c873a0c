package chat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// cp returns a prompt cache point block.
func cp() bus.ContentBlock {
	return bus.ContentBlock{CachePoint: &bus.CachePoint{Type: bus.CachePointDefault}}
}

func TestCachePointValidationErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	withTools := func(tools ...bus.Tool) func(*bus.ChatRequest) {
		return func(r *bus.ChatRequest) { r.ToolConfig = &bus.ToolConfig{Tools: tools} }
	}
	tool := weatherTools().Tools[0]
	cases := []struct {
		name string
		mod  func(*bus.ChatRequest)
		want string
	}{
		{"system type", func(r *bus.ChatRequest) {
			r.System = []bus.ContentBlock{{Text: "s"}, {CachePoint: &bus.CachePoint{Type: "ephemeral"}}}
		}, `system[1].cachePoint.type is "ephemeral"; want "default"`},
		{"system with text", func(r *bus.ChatRequest) {
			r.System = []bus.ContentBlock{{Text: "s", CachePoint: &bus.CachePoint{Type: "default"}}}
		}, "system[0] sets cachePoint and another field"},
		{"system only points", func(r *bus.ChatRequest) { r.System = []bus.ContentBlock{cp()} }, "system holds only cache points"},
		{"ttl", func(r *bus.ChatRequest) {
			r.System = []bus.ContentBlock{{Text: "s"}, {CachePoint: &bus.CachePoint{Type: "default", TTL: "2h"}}}
		}, `system[1].cachePoint.ttl is "2h"; want "5m", "1h" or none`},
		{"message type", func(r *bus.ChatRequest) {
			r.Messages[0].Content = append(r.Messages[0].Content, bus.ContentBlock{CachePoint: &bus.CachePoint{}})
		}, `messages[0].content[1].cachePoint.type is ""; want "default"`},
		{"message with text", func(r *bus.ChatRequest) {
			r.Messages[0].Content[0].CachePoint = &bus.CachePoint{Type: "default"}
		}, "messages[0].content[0] sets cachePoint and another field"},
		{"message only points", func(r *bus.ChatRequest) {
			r.Messages = append([]bus.Message{{Role: "user", Content: []bus.ContentBlock{cp(), cp()}}, {Role: "assistant", Content: []bus.ContentBlock{{Text: "a"}}}}, r.Messages...)
		}, "messages[0] holds only cache points"},
		{"reasoning and point", func(r *bus.ChatRequest) {
			r.Messages = append([]bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "q"}}}, {Role: "assistant", Content: []bus.ContentBlock{
				{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: "t", Signature: "s"}}}, cp()}}}, r.Messages...)
		}, "messages[1] holds only reasoning"},
		{"too many", func(r *bus.ChatRequest) {
			r.System = []bus.ContentBlock{{Text: "s"}, cp()}
			r.Messages[0].Content = []bus.ContentBlock{{Text: "a"}, cp(), {Text: "b"}, cp(), {Text: "c"}, cp()}
			r.ToolConfig = &bus.ToolConfig{Tools: []bus.Tool{tool, {CachePoint: &bus.CachePoint{Type: "default"}}}}
		}, "the request holds more than 4 cache points"},
		{"tool type", withTools(tool, bus.Tool{CachePoint: &bus.CachePoint{Type: "x"}}), `toolConfig.tools[1].cachePoint.type is "x"`},
		{"tool with spec", withTools(bus.Tool{ToolSpec: tool.ToolSpec, CachePoint: &bus.CachePoint{Type: "default"}}), "toolConfig.tools[0] sets both toolSpec and cachePoint"},
		{"tools only points", withTools(bus.Tool{CachePoint: &bus.CachePoint{Type: "default"}}), "toolConfig.tools holds only cache points"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h.refused(t, user("cpv"+strings.Repeat("x", i)), "cpval-"+strings.ReplaceAll(tc.name, " ", "-"), request("x", tc.mod), tc.want)
		})
	}
	t.Cleanup(func() {
		if reserves, _, _ := h.c.snapshot(); len(reserves) != 0 {
			t.Errorf("invalid requests reached meter: %+v", reserves)
		}
	})
}

// TestCachePointsAccepted: cache points count no bytes and are no tools,
// so a request at the size and tool limits stays valid with them; and a
// request with cache points has the cache key of the same request
// without, so it is answered from the cache.
func TestCachePointsAccepted(t *testing.T) {
	t.Parallel()
	text := func(r *bus.ChatRequest) {
		r.System = []bus.ContentBlock{{Text: strings.Repeat("s", 40)}, cp()}
		r.Messages[0].Content = []bus.ContentBlock{{Text: strings.Repeat("a", 30)}, cp(), {Text: "b"}, cp()}
	}
	tools := make([]bus.Tool, 0, chat.MaxTools+1)
	for i := range chat.MaxTools {
		tools = append(tools, bus.Tool{ToolSpec: &bus.ToolSpec{Name: "t" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{}`)}}})
	}
	tools = append(tools[:1], append([]bus.Tool{{CachePoint: &bus.CachePoint{Type: "default"}}}, tools[1:]...)...)
	withTools := request("", text, func(r *bus.ChatRequest) { r.ToolConfig = &bus.ToolConfig{Tools: tools} })
	small := request("", text)
	// 40 + 31 bytes of text: at a limit of 71 bytes.
	h := newHarness(t, chat.Config{MaxInputBytes: 71}, contractOpts{})
	ann := user("ann")
	sub := h.listen(h.subj.Outbound(ann.ChannelID))
	h.publish(ann, "cp-tools", withTools, nil)
	if ev := next(t, sub); ev.Error == nil || !strings.Contains(ev.Error.Message, "more than the limit of 71") {
		t.Fatalf("%+v, want the size limit (not the tool limit)", ev.Error)
	}
	h.publish(ann, "cp-small", small, nil)
	checkAnswer(t, answer(t, sub), "cp-small", "conv-1", strings.Repeat("a", 30)+"\nb", "end_turn")

	// The same request without the cache points has the same key.
	var with bus.ChatRequest
	if err := json.Unmarshal(small, &with); err != nil {
		t.Fatal(err)
	}
	without := with
	without.System = with.System[:1]
	without.Messages = []bus.Message{{Role: "user", Content: []bus.ContentBlock{with.Messages[0].Content[0], with.Messages[0].Content[2]}}}
	eventually(t, "cache put", func() bool { _, _, p := h.c.snapshot(); return len(p) == 1 })
	_, _, puts := h.c.snapshot()
	if k := bus.CacheKey("user:"+ann.Subject(), "echo", without); puts[0].Key != k {
		t.Fatalf("cache key %s, want the key without cache points %s", puts[0].Key, k)
	}
}

// TestBedrockCacheWriteCost: the tokens Bedrock reads from and writes to
// its prompt cache are input tokens of the usage record, and its cost
// prices them at the cached and the cache write price; a model without a
// cache write price charges writes as input; writes for an hour are
// priced at the 1-hour write price. The reservation of a request with
// cache points covers all of its input written at the write price (the
// 1-hour one when a cache point asks for an hour).
func TestBedrockCacheWriteCost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		price       chat.Price
		hour        int64  // of the 1,000 cache writes, those for an hour
		ttl         string // of the cache points
		cost        int64
		reservePerM float64 // input price of the reservation
	}{
		// 10*3 + 200*0.3 + 1000*3.75 + 4*15 = 30 + 60 + 3750 + 60.
		{"write price", chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CachedInputPerMillion: 0.3, CacheWriteInputPerMillion: 3.75}, 0, "", 3900, 3.75},
		// 10*3 + 200*0.3 + 1000*3 + 4*15.
		{"input price", chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CachedInputPerMillion: 0.3}, 0, "", 3150, 3},
		// 10*3 + 200*0.3 + 400*3.75 + 600*6 + 4*15 = 30 + 60 + 1500 + 3600 + 60.
		{"1-hour writes", chat.Price{InputPerMillion: 3, OutputPerMillion: 15, CachedInputPerMillion: 0.3, CacheWriteInputPerMillion: 3.75, CacheWrite1hInputPerMillion: 6},
			600, bus.CacheTTL1h, 5250, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			usage := &providertest.Usage{InputTokens: 10, OutputTokens: 4, CacheReadInputTokens: 200, CacheWriteInputTokens: 1000, CacheWrite1hInputTokens: tc.hour}
			fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"o", "k"}, Usage: usage})
			defer fake.Close()
			cfg := bedrockConfig(fake)
			cfg.Models[0].Price = tc.price
			cfg.Models[0].Fallbacks = nil
			h := newHarness(t, cfg, contractOpts{})
			cat := user("cat")
			sub := h.listen(h.subj.Outbound(cat.ChannelID))
			h.publish(cat, "req-cw", modelRequest("claude", "long document", func(r *bus.ChatRequest) {
				r.System = []bus.ContentBlock{{Text: "rules"}, {CachePoint: &bus.CachePoint{Type: bus.CachePointDefault, TTL: tc.ttl}}}
				r.Messages[0].Content = append(r.Messages[0].Content, cp())
				r.InferenceConfig = &bus.InferenceConfig{MaxTokens: 50}
			}), nil)
			md := checkAnswer(t, answer(t, sub), "req-cw", "conv-1", "ok", "end_turn")
			if u := md.Metadata.Usage; u.InputTokens != 1210 || u.OutputTokens != 4 || u.TotalTokens != 1214 {
				t.Fatalf("usage %+v", u)
			}
			rec, _ := h.usageRecord("acme", "req-cw")
			if rec.InputTokens != 1210 || rec.TotalTokens != 1214 || rec.CostMicroUSD != tc.cost {
				t.Fatalf("usage record %+v, want 1210 input tokens costing %d", rec, tc.cost)
			}
			reserves, settles, _ := h.c.snapshot()
			if len(settles) != 1 || settles[0].CostMicroUSD != tc.cost {
				t.Fatalf("settle %+v", settles)
			}
			if want := int64(float64(reserves[0].InputTokens)*tc.reservePerM + 50*15 + 0.999); len(reserves) != 1 || reserves[0].MaxCostMicroUSD != want {
				t.Fatalf("reserve %+v, want MaxCostMicroUSD %d", reserves, want)
			}
			body, _ := json.Marshal(fake.Requests()[0].Body)
			point := `{"cachePoint":{"type":"default"}}`
			if tc.ttl != "" {
				point = `{"cachePoint":{"ttl":"` + tc.ttl + `","type":"default"}}`
			}
			for _, want := range []string{`"system":[{"text":"rules"},` + point + `]`,
				`"content":[{"text":"long document"},{"cachePoint":{"type":"default"}}]`} {
				if !strings.Contains(string(body), want) {
					t.Errorf("upstream body %s lacks %s", body, want)
				}
			}
		})
	}
}
