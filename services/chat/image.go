package chat

import (
	"net/http"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// imageTypes maps each image format to the MIME type its bytes must sniff
// as.
var imageTypes = map[string]string{
	bus.ImagePNG:  "image/png",
	bus.ImageJPEG: "image/jpeg",
	bus.ImageGIF:  "image/gif",
	bus.ImageWebP: "image/webp",
}

// validateImage checks the image block j of message i: in a user message,
// a known format and bytes of that format. Their size is bounded by the
// stored request's (nats.max_request_bytes, see bus.RequestLimit).
func validateImage(m bus.Message, i, j int) *requestError {
	img := m.Content[j].Image
	if m.Role != roleUser {
		return invalid("messages[%d].content[%d].image is in a %q message; only user messages carry images", i, j, m.Role)
	}
	if u := img.Source.URL; u != "" {
		switch {
		case len(img.Source.Bytes) > 0:
			return invalid("messages[%d].content[%d].image.source sets both bytes and url", i, j)
		case len(u) > MaxImageURLBytes:
			return invalid("messages[%d].content[%d].image.source.url is %d bytes, more than the limit of %d", i, j, len(u), MaxImageURLBytes)
		case !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://"):
			return invalid("messages[%d].content[%d].image.source.url must be an http or https URL", i, j)
		case img.Format != "" && imageTypes[img.Format] == "":
			return invalid("messages[%d].content[%d].image.format %q is not supported; use png, jpeg, gif or webp", i, j, img.Format)
		}
		return nil
	}
	want, ok := imageTypes[img.Format]
	if !ok {
		return invalid("messages[%d].content[%d].image.format %q is not supported; use png, jpeg, gif or webp", i, j, img.Format)
	}
	if len(img.Source.Bytes) == 0 {
		return invalid("messages[%d].content[%d].image.source.bytes is empty", i, j)
	}
	if got := http.DetectContentType(img.Source.Bytes); got != want {
		return invalid("messages[%d].content[%d].image.source.bytes is not a %s image (its bytes look like %s)", i, j, img.Format, got)
	}
	return nil
}
