package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// EchoName is the catalog name of the [Echo] provider.
const EchoName = "echo"

// Echo answers with the text of the last user message, one word per chunk;
// a last message holding only tool results is answered with their text.
// It never calls a tool. Its tokenizer is words: input tokens are the words
// of every system and message text, tool result and tool input, output
// tokens the chunks emitted, both exact. Images are not words: echo counts
// no tokens for them and does not echo them.
type Echo struct {
	// Delay is the pause between chunks (0 = none), for realistic
	// streaming in development and for cancellation tests.
	Delay time.Duration
}

var _ Provider = (*Echo)(nil)

// Name implements [Provider].
func (e *Echo) Name() string { return EchoName }

// InputTokens implements [Provider]; echo counts exactly.
func (e *Echo) InputTokens(call *Call) (int64, bool) {
	n := 0
	for _, s := range call.System {
		n += CountWords(s.Text)
	}
	for _, m := range call.Messages {
		for _, b := range m.Content {
			n += CountWords(b.Text)
			if u := b.ToolUse; u != nil {
				n += CountWords(string(u.Input))
			}
			for _, t := range resultTexts(b) {
				n += CountWords(t)
			}
		}
	}
	return int64(n), true
}

// Stream implements [Provider].
func (e *Echo) Stream(ctx context.Context, call *Call, emit func(Delta) error) (Result, error) {
	in, _ := e.InputTokens(call)
	res := Result{StopReason: StopEndTurn}
	res.Usage.InputTokens = in
	finish := func() {
		res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	}
	var timer *time.Timer
	if e.Delay > 0 {
		timer = time.NewTimer(e.Delay)
		defer timer.Stop()
	}
	for i, chunk := range SplitWords(lastUserText(call)) {
		if i >= call.MaxTokens {
			res.StopReason = StopMaxTokens
			break
		}
		if i > 0 && timer != nil {
			timer.Reset(e.Delay)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if err := ctx.Err(); err != nil {
			finish()
			return res, fmt.Errorf("echo: %w", err)
		}
		if err := emit(Delta{Text: chunk}); err != nil {
			finish()
			return res, fmt.Errorf("echo: emit: %w", err)
		}
		res.Usage.OutputTokens++
	}
	finish()
	return res, nil
}

// lastUserText returns the text of the last user message, its blocks
// joined by newlines.
func lastUserText(call *Call) string {
	for i := len(call.Messages) - 1; i >= 0; i-- {
		m := call.Messages[i]
		if m.Role != "user" {
			continue
		}
		texts := make([]string, 0, len(m.Content))
		for _, b := range m.Content {
			if b.Text != "" {
				texts = append(texts, b.Text)
			}
			texts = append(texts, resultTexts(b)...)
		}
		return strings.Join(texts, "\n")
	}
	return ""
}

// resultTexts returns the texts of a tool result block, its JSON pieces as
// written (nil for other blocks).
func resultTexts(b bus.ContentBlock) []string {
	if b.ToolResult == nil {
		return nil
	}
	out := make([]string, 0, len(b.ToolResult.Content))
	for _, c := range b.ToolResult.Content {
		if c.Text != "" {
			out = append(out, c.Text)
		}
		if len(c.JSON) > 0 {
			out = append(out, string(c.JSON))
		}
	}
	return out
}
