package chat_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestReasoningModel runs a model that reasons for longer than the
// first-token timeout before its answer, on each fake upstream: the
// reasoning streams as reasoningContent deltas, counts as the first token
// (the model is called once, not cut off and retried), Bedrock's ends
// with its signature, and the answer's text follows; only the text is
// cached.
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
				if d := ev.ContentBlockDelta; d != nil && d.Delta.ReasoningContent != nil && d.Delta.ReasoningContent.Signature != "" {
					got = append(got, fmt.Sprintf("signature %d %s", d.ContentBlockIndex, d.Delta.ReasoningContent.Signature))
				} else if d != nil && d.Delta.ReasoningContent != nil {
					got = append(got, fmt.Sprintf("reasoning %d %s", d.ContentBlockIndex, d.Delta.ReasoningContent.Text))
				} else if d != nil {
					got = append(got, fmt.Sprintf("text %d %s", d.ContentBlockIndex, d.Delta.Text))
				}
				if ev.Error != nil {
					t.Fatalf("error event %+v", ev.Error)
				}
			}
			want := []string{"reasoning 0 The user", "reasoning 0  wants", "reasoning 0  a greeting."}
			if tc.name == "bedrock" { // Bedrock signs its reasoning
				want = append(want, "signature 0 "+providertest.ReasoningSignature("The user wants a greeting."))
			}
			want = append(want, fmt.Sprintf("text %d Hello", tc.textBlock), fmt.Sprintf("text %d  there", tc.textBlock))
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

// TestReasoningSentBack runs the two turns of a tool call with Claude's
// extended thinking on the fake Bedrock, which refuses the second turn as
// Claude does unless the first turn's reasoning comes back signed: the
// first turn's reasoning and signature, read from its events, go back as a
// reasoningContent block of the assistant turn and the answer follows;
// without the block the fake's refusal reaches the client.
func TestReasoningSentBack(t *testing.T) {
	t.Parallel()
	fake := providertest.NewBedrock(providertest.Reply{Chunks: []string{"It is noon."}, Usage: &providertest.Usage{InputTokens: 50, OutputTokens: 4}})
	t.Cleanup(fake.Close)
	cfg := bedrockConfig(fake)
	cfg.Models[0].RequestFields = json.RawMessage(`{"thinking":{"type":"enabled","budget_tokens":1024}}`)
	cfg.Models[0].Fallbacks = nil
	h := newHarness(t, cfg, contractOpts{})
	clock := &bus.ToolConfig{Tools: []bus.Tool{{ToolSpec: &bus.ToolSpec{Name: "clock", InputSchema: bus.ToolInputSchema{JSON: json.RawMessage(`{"type":"object"}`)}}}}}
	ask := bus.Message{Role: "user", Content: []bus.ContentBlock{{Text: "What time is it?"}}}

	fake.Push(providertest.Reply{
		Reasoning: []string{"The user wants ", "the time."},
		ToolCalls: []providertest.ToolCall{{ID: "tu-1", Name: "clock", InputChunks: []string{`{}`}}},
		Usage:     &providertest.Usage{InputTokens: 20, OutputTokens: 15},
	})
	ada := user("ada")
	sub := h.listen(h.subj.Outbound(ada.ChannelID))
	h.publish(ada, "think-1", modelRequest("claude", "What time is it?", func(r *bus.ChatRequest) { r.ToolConfig = clock }), nil)
	var thought strings.Builder
	var sig string
	for _, ev := range answer(t, sub) {
		if ev.Error != nil {
			t.Fatalf("first turn: error %+v", ev.Error)
		}
		if d := ev.ContentBlockDelta; d != nil && d.Delta.ReasoningContent != nil {
			thought.WriteString(d.Delta.ReasoningContent.Text)
			if s := d.Delta.ReasoningContent.Signature; s != "" {
				sig = s
			}
		}
	}
	if thought.String() != "The user wants the time." || sig == "" {
		t.Fatalf("first turn streamed reasoning %q, signature %q", thought.String(), sig)
	}

	second := func(assistant ...bus.ContentBlock) func(*bus.ChatRequest) {
		return func(r *bus.ChatRequest) {
			r.ToolConfig = clock
			r.Messages = []bus.Message{ask,
				{Role: "assistant", Content: append(assistant, bus.ContentBlock{ToolUse: &bus.ToolUseBlock{ToolUseID: "tu-1", Name: "clock", Input: json.RawMessage(`{}`)}})},
				{Role: "user", Content: []bus.ContentBlock{{ToolResult: &bus.ToolResultBlock{ToolUseID: "tu-1", Content: []bus.ToolResultContent{{Text: "12:00"}}}}}},
			}
		}
	}
	reasoning := bus.ContentBlock{ReasoningContent: &bus.ReasoningBlock{ReasoningText: &bus.ReasoningText{Text: thought.String(), Signature: sig}}}
	h.publish(ada, "think-2", modelRequest("claude", "", second(reasoning)), nil)
	var text strings.Builder
	for _, ev := range answer(t, sub) {
		if ev.Error != nil {
			t.Fatalf("second turn with the reasoning sent back: error %+v", ev.Error)
		}
		if d := ev.ContentBlockDelta; d != nil {
			text.WriteString(d.Delta.Text)
		}
	}
	if text.String() != "It is noon." {
		t.Fatalf("second turn answered %q", text.String())
	}

	h.publish(ada, "think-3", modelRequest("claude", "", second()), nil)
	evs := answer(t, sub)
	last := evs[len(evs)-1]
	if last.Error == nil || !strings.Contains(last.Error.Message, "Expected `thinking`") {
		t.Fatalf("second turn without the reasoning: last event %+v, want the upstream's refusal", last)
	}
}

// TestReasoningValidation refuses reasoning blocks a model cannot take
// back, naming the field.
func TestReasoningValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	rb := func(text, sig string, redacted []byte) bus.ContentBlock {
		r := &bus.ReasoningBlock{RedactedContent: redacted}
		if text != "" || sig != "" {
			r.ReasoningText = &bus.ReasoningText{Text: text, Signature: sig}
		}
		return bus.ContentBlock{ReasoningContent: r}
	}
	turn := func(assistant ...bus.ContentBlock) func(*bus.ChatRequest) {
		return func(r *bus.ChatRequest) {
			r.Messages = []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "hi"}}},
				{Role: "assistant", Content: assistant},
				{Role: "user", Content: []bus.ContentBlock{{Text: "and?"}}},
			}
		}
	}
	hello := bus.ContentBlock{Text: "Hello."}
	cases := []struct {
		name string
		mod  func(*bus.ChatRequest)
		want string
	}{
		{"from user", func(r *bus.ChatRequest) { r.Messages[0].Content = append(r.Messages[0].Content, rb("t", "s", nil)) },
			`messages[0].content[1].reasoningContent is in a "user" message`},
		{"both", turn(rb("t", "s", []byte{1}), hello), "messages[1].content[0].reasoningContent sets both reasoningText and redactedContent"},
		{"empty", turn(rb("", "", nil), hello), "messages[1].content[0].reasoningContent is empty: set reasoningText or redactedContent"},
		{"no text", turn(rb("", "s", nil), hello), "messages[1].content[0].reasoningContent.reasoningText.text is empty"},
		{"alone", turn(rb("t", "s", nil)), "messages[1] holds only reasoning"},
		{"with text", turn(bus.ContentBlock{Text: "x", ReasoningContent: &bus.ReasoningBlock{RedactedContent: []byte{1}}}),
			"messages[1].content[0] sets more than one of text, image, toolUse, toolResult and reasoningContent"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h.refused(t, user("rv"+strings.Repeat("x", i)), "reasonval-"+strings.ReplaceAll(tc.name, " ", "-"), request("x", tc.mod), tc.want)
		})
	}
	// A valid block is accepted (echo ignores it).
	ok := user("rv-ok")
	sub := h.listen(h.subj.Outbound(ok.ChannelID))
	h.publish(ok, "reasonval-ok", request("x", turn(rb("t", "s", nil), hello)), nil)
	for _, ev := range answer(t, sub) {
		if ev.Error != nil {
			t.Fatalf("valid reasoning block refused: %+v", ev.Error)
		}
	}
}
