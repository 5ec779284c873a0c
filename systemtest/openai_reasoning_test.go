package systemtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIReasoning streams a reasoning model's answer through the SDK:
// the reasoning arrives in delta.reasoning_content (the field DeepSeek's
// and vLLM's clients read; the SDK keeps it as an extra field) before the
// content, non-streamed in message.reasoning_content, and only the answer
// is in content.
func TestOpenAIReasoning(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{
		Reasoning: []string{"Two", " plus two", " is four."},
		Chunks:    []string{"4", "."},
		Usage:     &providertest.Usage{InputTokens: 6, OutputTokens: 12},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := s.client.Chat.Completions.NewStreaming(ctx, userParams("gpt", "2+2?"))
	var reasoning, content strings.Builder
	var order []string
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) == 0 {
			continue
		}
		d := c.Choices[0].Delta
		if f, ok := d.JSON.ExtraFields["reasoning_content"]; ok && f.Raw() != "" {
			var r string
			if err := json.Unmarshal([]byte(f.Raw()), &r); err != nil {
				t.Fatalf("reasoning_content %s: %v", f.Raw(), err)
			}
			reasoning.WriteString(r)
			order = append(order, "reasoning")
		}
		if d.Content != "" {
			content.WriteString(d.Content)
			order = append(order, "content")
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if reasoning.String() != "Two plus two is four." || content.String() != "4." ||
		strings.Join(order, ",") != "reasoning,reasoning,reasoning,content,content" {
		t.Fatalf("reasoning %q content %q order %v", reasoning.String(), content.String(), order)
	}

	resp, err := s.client.Chat.Completions.New(ctx, userParams("gpt", "3+3?"))
	if err != nil {
		t.Fatal(err)
	}
	f := resp.Choices[0].Message.JSON.ExtraFields["reasoning_content"]
	if resp.Choices[0].Message.Content != "4." || f.Raw() != `"Two plus two is four."` {
		t.Fatalf("message %q reasoning %s", resp.Choices[0].Message.Content, f.Raw())
	}
}
