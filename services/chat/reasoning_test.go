package chat_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestReasoningModel runs a model that reasons for longer than the
// first-token timeout before its answer, on each fake upstream: the
// reasoning streams as reasoningContent deltas, counts as the first token
// (the model is called once, not cut off and retried), and the answer's
// text follows; only the text is cached.
func TestReasoningModel(t *testing.T) {
	t.Parallel()
	reply := providertest.Reply{
		Reasoning:  []string{"The user", " wants", " a greeting."},
		Chunks:     []string{"Hello", " there"},
		ChunkDelay: 150 * time.Millisecond, // 600 ms of reasoning and text
		Usage:      &providertest.Usage{InputTokens: 4, OutputTokens: 30},
	}
	oai := providertest.NewOpenAI(reply)
	t.Cleanup(oai.Close)
	bedrock := providertest.NewBedrock(reply)
	t.Cleanup(bedrock.Close)
	type fake interface{ Requests() []providertest.Request }
	for _, tc := range []struct {
		name, model string
		fake        fake
		textBlock   int
	}{
		{"openai", "gpt", oai, 0},
		{"bedrock", "claude", bedrock, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := openAIConfig(oai)
			if tc.name == "bedrock" {
				cfg = bedrockConfig(bedrock)
			}
			cfg.FirstTokenTimeout = 250 * time.Millisecond // shorter than the reasoning
			h := newHarness(t, cfg, contractOpts{})
			kim := user("kim-" + tc.name)
			sub := h.listen(h.subj.Outbound(kim.ChannelID))
			h.publish(kim, "think-"+tc.name, modelRequest(tc.model, "greet me"), nil)
			evs := answer(t, sub)
			var got []string
			for _, ev := range evs {
				if d := ev.ContentBlockDelta; d != nil && d.Delta.ReasoningContent != nil {
					got = append(got, fmt.Sprintf("reasoning %d %s", d.ContentBlockIndex, d.Delta.ReasoningContent.Text))
				} else if d != nil {
					got = append(got, fmt.Sprintf("text %d %s", d.ContentBlockIndex, d.Delta.Text))
				}
				if ev.Error != nil {
					t.Fatalf("error event %+v", ev.Error)
				}
			}
			want := []string{"reasoning 0 The user", "reasoning 0  wants", "reasoning 0  a greeting.",
				fmt.Sprintf("text %d Hello", tc.textBlock), fmt.Sprintf("text %d  there", tc.textBlock)}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("deltas\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if md := evs[len(evs)-1].Metadata; md == nil || md.Usage.OutputTokens != 30 {
				t.Fatalf("final event %+v", evs[len(evs)-1])
			}
			var calls int
			for _, r := range tc.fake.Requests() {
				if b, ok := r.Body["messages"]; ok && strings.Contains(fmt.Sprint(b), "greet me") {
					calls++
				}
			}
			if calls != 1 {
				t.Fatalf("the model was called %d times, want once (the first-token timeout cut it off)", calls)
			}
			eventually(t, "cache put", func() bool { _, _, p := h.c.snapshot(); return len(p) == 1 })
			if _, _, puts := h.c.snapshot(); puts[0].Entry.Text != "Hello there" {
				t.Fatalf("cached %q, want the text alone", puts[0].Entry.Text)
			}
		})
	}
}
