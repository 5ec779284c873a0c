package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// tinyImage returns a real 2x2 image encoded in format (bus.ImagePNG or
// bus.ImageJPEG) as an image block.
func tinyImage(t testing.TB, format string) *bus.ImageBlock {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.NRGBA{R: 255, A: 255})
	img.Set(1, 1, color.NRGBA{B: 255, A: 255})
	var buf bytes.Buffer
	var err error
	switch format {
	case bus.ImagePNG:
		err = png.Encode(&buf, img)
	case bus.ImageJPEG:
		err = jpeg.Encode(&buf, img, nil)
	default:
		t.Fatalf("tinyImage: format %q", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &bus.ImageBlock{Format: format, Source: bus.ImageSource{Bytes: buf.Bytes()}}
}

// TestEstimateInputImages checks that an image counts
// [ImageTokenEstimate] tokens, not its bytes as text, in the estimate, and
// no bytes in [BlockBytes].
func TestEstimateInputImages(t *testing.T) {
	t.Parallel()
	pngImg, jpegImg := tinyImage(t, bus.ImagePNG), tinyImage(t, bus.ImageJPEG)
	call := &Call{
		System: []bus.ContentBlock{{Text: "be brief"}}, // 8 bytes: 2 tokens
		Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
			{Text: "What differs between"}, // 20 bytes: 5 tokens
			{Image: pngImg},
			{Text: "and"}, // 3 bytes: 1 token
			{Image: jpegImg},
			{Text: "?"}, // 1 token
		}}},
	}
	if got, want := EstimateInput(call), int64(2*ImageTokenEstimate+2+5+1+1); got != want {
		t.Fatalf("EstimateInput = %d, want %d (2 images and 9 text tokens)", got, want)
	}
	for _, img := range []*bus.ImageBlock{pngImg, jpegImg} {
		if n := BlockBytes(bus.ContentBlock{Image: img}); n != 0 {
			t.Errorf("BlockBytes of a %d-byte %s image = %d, want 0", len(img.Source.Bytes), img.Format, n)
		}
	}
}

// TestEchoIgnoresImages checks that echo counts the words of a message
// with images and echoes its text only.
func TestEchoIgnoresImages(t *testing.T) {
	t.Parallel()
	call := &Call{MaxTokens: 10, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
		{Text: "look at"}, {Image: tinyImage(t, bus.ImagePNG)}, {Text: "this"},
	}}}}
	e := &Echo{}
	if n, exact := e.InputTokens(call); n != 3 || !exact {
		t.Fatalf("InputTokens = %d, %v; want 3 words, exact", n, exact)
	}
	var text strings.Builder
	res, err := e.Stream(context.Background(), call, func(d Delta) error {
		text.WriteString(d.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := text.String(); got != "look at\nthis" || res.Usage.InputTokens != 3 {
		t.Fatalf("echoed %q with %d input tokens, want %q with 3", got, res.Usage.InputTokens, "look at\nthis")
	}
}

// TestOpenAIImageURL passes an image given by URL on as the image_url
// part's url, for the server to fetch.
func TestOpenAIImageURL(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(providertest.Reply{Chunks: []string{"A cat."}})
	defer fake.Close()
	o := &OpenAI{ProviderName: "oa", BaseURL: fake.URL}
	const url = "https://example.com/cat.png?size=small"
	call := &Call{Model: "gpt-4o", MaxTokens: 10, Messages: []bus.Message{{Role: "user", Content: []bus.ContentBlock{
		{Text: "What is this?"}, {Image: &bus.ImageBlock{Source: bus.ImageSource{URL: url}}},
	}}}}
	if _, _, err := oaCollect(t, o, call); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(fake.Requests()[0].Body["messages"])
	want := `[{"content":[{"text":"What is this?","type":"text"},{"image_url":{"url":"` + url + `"},"type":"image_url"}],"role":"user"}]`
	if string(got) != want {
		t.Fatalf("messages\n got %s\nwant %s", got, want)
	}
}
