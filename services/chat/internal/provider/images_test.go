package provider

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
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
