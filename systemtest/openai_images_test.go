package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIImageInput sends a picture with a question through the SDK as
// an image_url data URL: the OpenAI-compatible upstream receives the same
// bytes in a data URL part after the text, the answer comes back; an image
// at an https URL is passed on unfetched (the provider is configured with
// image_urls), and any other URL is a 400 naming the part.
func TestOpenAIImageInput(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"A red", " dot."}, Usage: &providertest.Usage{InputTokens: 90, OutputTokens: 3}},
		func(c *config.Config) { c.Chat.Providers[0].ImageURLs = true })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(2, 2, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	params := openai.ChatCompletionNewParams{Model: "gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("what is in this picture?"),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: dataURL, Detail: "low"}),
	})}}
	resp, err := s.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "A red dot." {
		t.Fatalf("answer %q", resp.Choices[0].Message.Content)
	}
	reqs := s.fake.Requests()
	got, _ := json.Marshal(reqs[len(reqs)-1].Body["messages"])
	want, _ := json.Marshal([]any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "text", "text": "what is in this picture?"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": dataURL}},
	}}})
	if string(got) != string(want) {
		t.Fatalf("upstream messages\n got %s\nwant %s", got, want)
	}

	// An image at an https URL goes to the upstream as it is: Gatehouse
	// does not fetch it.
	params.Messages[0] = openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("and this one?"),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://images.example/cat.png"}),
	})
	if _, err := s.client.Chat.Completions.New(ctx, params); err != nil {
		t.Fatal(err)
	}
	reqs = s.fake.Requests()
	got, _ = json.Marshal(reqs[len(reqs)-1].Body["messages"])
	if want := `[{"content":[{"text":"and this one?","type":"text"},{"image_url":{"url":"https://images.example/cat.png"},"type":"image_url"}],"role":"user"}]`; string(got) != want {
		t.Fatalf("upstream messages\n got %s\nwant %s", got, want)
	}

	// Anything else is a 400 naming the part.
	params.Messages[0] = openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "file:///etc/passwd"}),
	})
	var apiErr *openai.Error
	if _, err := s.client.Chat.Completions.New(ctx, params); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "messages[0].content[0].image_url.url" {
		t.Fatalf("image at a file URL: %v", err)
	}
}
