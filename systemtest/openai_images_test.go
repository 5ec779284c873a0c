package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
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

// TestOpenAILargeImage sends a 3 MiB photo-sized image, larger than a
// stock NATS server's 1 MiB max_payload, through `gatehouse dev`, whose
// embedded server allows 8 MiB: the upstream gets every byte; a request
// over nats.max_request_bytes is a 413 naming the setting.
func TestOpenAILargeImage(t *testing.T) {
	t.Parallel()
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"Noise."}, Usage: &providertest.Usage{InputTokens: 1600, OutputTokens: 2}},
		func(c *config.Config) { c.NATS.MaxRequestBytes = 5 << 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	photo := func(n int) string {
		// A PNG signature, then noise (chat checks the bytes sniff as the
		// stated format, not that the image decodes).
		b := make([]byte, n)
		copy(b, "\x89PNG\r\n\x1a\n")
		r := rand.NewChaCha8([32]byte{byte(n)})
		r.Read(b[8:])
		return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
	}
	ask := func(url string) openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{Model: "gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("what is this?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: url}),
		})}}
	}
	big := photo(3 << 20)
	resp, err := s.client.Chat.Completions.New(ctx, ask(big))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Noise." {
		t.Fatalf("answer %q", resp.Choices[0].Message.Content)
	}
	reqs := s.fake.Requests()
	parts := reqs[len(reqs)-1].Body["messages"].([]any)[0].(map[string]any)["content"].([]any)
	if got := parts[1].(map[string]any)["image_url"].(map[string]any)["url"]; got != big {
		t.Fatalf("upstream image URL of %d bytes, want the %d sent", len(fmt.Sprint(got)), len(big))
	}

	var apiErr *openai.Error
	if _, err := s.client.Chat.Completions.New(ctx, ask(photo(4<<20))); !errors.As(err, &apiErr) || apiErr.StatusCode != 413 || !strings.Contains(apiErr.Message, "nats.max_request_bytes") {
		t.Fatalf("a request over nats.max_request_bytes: %v, want a 413 naming it", err)
	}
}
