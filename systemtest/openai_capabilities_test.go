package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// TestOpenAIModelCapabilities configures gpt with vision: false: an image
// sent to it through the SDK is a 400 whose message names the model and
// the setting, and the upstream is never called; text still goes through.
// GET /v1/models lists each model's capabilities as an extra field.
func TestOpenAIModelCapabilities(t *testing.T) {
	t.Parallel()
	no := false
	s := startOpenAIStack(t, providertest.Reply{Chunks: []string{"just", " text"}, Usage: &providertest.Usage{InputTokens: 4, OutputTokens: 2}},
		func(c *config.Config) { c.Chat.Models[0].Vision = &no })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	params := openai.ChatCompletionNewParams{Model: "gpt-alias", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("what is in this picture?"),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}),
	})}}
	var apiErr *openai.Error
	_, err := s.client.Chat.Completions.New(ctx, params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != bus.ErrTypeValidation ||
		!strings.Contains(apiErr.Message, "model gpt does not read images (chat.models[].vision is false)") {
		t.Fatalf("image to a vision: false model: %v", err)
	}
	if n := len(s.fake.Requests()); n != 0 {
		t.Fatalf("%d upstream requests, want none", n)
	}
	if resp, err := s.client.Chat.Completions.New(ctx, userParams("gpt", "describe nothing")); err != nil || resp.Choices[0].Message.Content != "just text" {
		t.Fatalf("text to gpt: %+v %v", resp, err)
	}

	page, err := s.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.ID+" "+m.JSON.ExtraFields["capabilities"].Raw())
	}
	if want := []string{`gpt {"vision":false,"tools":true}`, `echo {"vision":true,"tools":true}`}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("models\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
