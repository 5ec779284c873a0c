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
		{"two kinds", func(r *bus.ChatRequest) {
			r.Messages[0].Content[0].Image = &bus.ImageBlock{Format: bus.ImagePNG, Source: bus.ImageSource{Bytes: pic}}
		}, "messages[0].content[0] sets more than one of text, image"},
	}
	for i, tc := range cases {
		h.refused(t, user("iv"+strings.Repeat("x", i)), "img-v-"+strings.ReplaceAll(tc.name, " ", "-"), request("look", tc.mod), tc.want)
	}
}
