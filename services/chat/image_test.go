package chat_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/chat/providertest"
)

// tinyPNG encodes a 2x2 PNG.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withImage puts an image of format with data after the request's text.
func withImage(format string, data []byte) func(*bus.ChatRequest) {
	return func(r *bus.ChatRequest) {
		r.Messages[0].Content = append(r.Messages[0].Content, bus.ContentBlock{Image: &bus.ImageBlock{Format: format, Source: bus.ImageSource{Bytes: data}}})
	}
}

// withImageURL puts an image given by URL after the request's text.
func withImageURL(url string) func(*bus.ChatRequest) {
	return func(r *bus.ChatRequest) {
		r.Messages[0].Content = append(r.Messages[0].Content, bus.ContentBlock{Image: &bus.ImageBlock{Source: bus.ImageSource{URL: url}}})
	}
}

// TestImageURLs: only OpenAI-compatible providers configured with
// ImageURLs take images by URL. A request with an image URL to a Bedrock
// model, or to a server without ImageURLs, is refused naming the model,
// and a Bedrock fallback of a model that takes URLs is skipped for it.
func TestImageURLs(t *testing.T) {
	t.Parallel()
	bedrock := providertest.NewBedrock(providertest.Reply{Chunks: []string{"a", "b"}})
	t.Cleanup(bedrock.Close)
	failing := providertest.NewOpenAI(providertest.Reply{Status: 500})
	t.Cleanup(failing.Close)
	cfg := bedrockConfig(bedrock)
	cfg.Providers = append(cfg.Providers,
		chat.ProviderConfig{Name: "oa", Type: chat.ProviderTypeOpenAI, BaseURL: failing.URL, ImageURLs: true},
		chat.ProviderConfig{Name: "vllm", Type: chat.ProviderTypeOpenAI, BaseURL: failing.URL})
	cfg.Models = append(cfg.Models,
		chat.Model{ID: "gpt", Provider: "oa", DefaultMaxTokens: 100, MaxTokens: 1000, Fallbacks: []string{"claude"}},
		chat.Model{ID: "llama", Provider: "vllm", DefaultMaxTokens: 100, MaxTokens: 1000})
	h := newHarness(t, cfg, contractOpts{})
	jo := user("jo")
	h.refused(t, jo, "url-br", modelRequest("claude", "what is it", withImageURL("https://example.com/a.png")),
		"model claude (provider br) does not take images by URL: send each image's bytes inline")
	// An OpenAI-compatible server takes URLs only when its configuration
	// says so (a self-hosted one would fetch inside the network).
	h.refused(t, jo, "url-vllm", modelRequest("llama", "what is it", withImageURL("http://10.0.0.1/admin.png")),
		"model llama (provider vllm) does not take images by URL")

	sub := h.listen(h.subj.Outbound(jo.ChannelID))
	h.publish(jo, "url-fb", modelRequest("gpt", "what is it", withImageURL("https://example.com/a.png")), nil)
	evs := answer(t, sub)
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Type != bus.ErrTypeUpstreamError || last.Error.Details["model"] != "gpt" {
		t.Fatalf("last event %+v", last)
	}
	if n, m := len(failing.Requests()), len(bedrock.Requests()); n != 2 || m != 0 {
		t.Fatalf("%d requests to gpt's server and %d to Bedrock, want 2 and 0", n, m)
	}
}

// TestImages sends images through echo: a valid one is accepted (echo
// answers the text, and the cache key depends on the image's bytes), and
// each rule of an image is a validation error naming the block.
func TestImages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, chat.Config{}, contractOpts{})
	pic := tinyPNG(t)

	ivy := user("ivy")
	sub := h.listen(h.subj.Outbound(ivy.ChannelID))
	h.publish(ivy, "img-1", request("what is in this picture", withImage(bus.ImagePNG, pic)), nil)
	checkAnswer(t, answer(t, sub), "img-1", "conv-1", "what is in this picture", "end_turn")

	// An image at a URL is accepted for a provider that fetches images
	// (echo ignores it).
	h.publish(ivy, "img-2", request("and this one", withImageURL("https://example.com/cat.png")), nil)
	checkAnswer(t, answer(t, sub), "img-2", "conv-1", "and this one", "end_turn")

	var a, b bus.ChatRequest
	a.Messages = []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}, {Image: &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: pic}}}}}}
	other := append([]byte(nil), pic...)
	other[len(other)-1] ^= 1
	b.Messages = []bus.Message{{Role: "user", Content: []bus.ContentBlock{{Text: "x"}, {Image: &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: other}}}}}}
	if bus.CacheKey("s", "m", a) == bus.CacheKey("s", "m", b) {
		t.Fatal("two different images give the same cache key")
	}

	jpegish := append([]byte{0xff, 0xd8, 0xff}, make([]byte, 16)...)
	cases := []struct {
		name string
		mod  func(*bus.ChatRequest)
		want string
	}{
		{"format", withImage("bmp", pic), `messages[0].content[1].image.format "bmp" is not supported`},
		{"empty", withImage(bus.ImagePNG, nil), "messages[0].content[1].image.source.bytes is empty"},
		{"mismatch", withImage(bus.ImagePNG, jpegish), "messages[0].content[1].image.source.bytes is not a png image (its bytes look like image/jpeg)"},
		{"not an image", withImage(bus.ImageGIF, []byte("hello, I am text")), "is not a gif image"},
		{"too many", func(r *bus.ChatRequest) {
			for range chat.MaxImages + 1 {
				withImage(bus.ImagePNG, pic)(r)
			}
		}, "messages hold more than 20 images"},
		{"assistant image", func(r *bus.ChatRequest) {
			r.Messages = []bus.Message{
				{Role: "user", Content: []bus.ContentBlock{{Text: "a"}}},
				{Role: "assistant", Content: []bus.ContentBlock{{Image: &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: pic}}}}},
				{Role: "user", Content: []bus.ContentBlock{{Text: "b"}}},
			}
		}, `messages[1].content[0].image is in a "assistant" message`},
		{"url and bytes", func(r *bus.ChatRequest) {
			withImage(bus.ImagePNG, pic)(r)
			r.Messages[0].Content[1].Image.Source.URL = "https://example.com/a.png"
		}, "messages[0].content[1].image.source sets both bytes and url"},
		{"url scheme", withImageURL("ftp://example.com/a.png"), "messages[0].content[1].image.source.url must be an http or https URL"},
		{"url too long", withImageURL("https://example.com/" + strings.Repeat("a", chat.MaxImageURLBytes)), "more than the limit of 8192"},
		{"two kinds", func(r *bus.ChatRequest) {
			r.Messages[0].Content[0].Image = &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: pic}}
		}, "messages[0].content[0] sets more than one of text, image"},
	}
	for i, tc := range cases {
		h.refused(t, user("iv"+strings.Repeat("x", i)), "img-v-"+strings.ReplaceAll(tc.name, " ", "-"), request("look", tc.mod), tc.want)
	}
}
