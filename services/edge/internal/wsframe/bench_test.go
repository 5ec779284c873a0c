package wsframe

import (
	"bytes"
	"testing"
)

func BenchmarkReaderText200x1000(b *testing.B) {
	payload := bytes.Repeat([]byte("0123456789abcdefghij"), 10)
	var specs []frameSpec
	for range 1000 {
		specs = append(specs, frameSpec{op: OpText, payload: payload})
	}
	data := frames(specs...)
	src := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		r := NewReader(1 << 20)
		for range 1000 {
			m, err := r.Next(src)
			if err != nil || len(m.Payload) != 200 {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkReader64KiB(b *testing.B) {
	data := clientFrame(frameSpec{op: OpBinary, payload: pattern(64 << 10)})
	src := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		r := NewReader(1 << 20)
		if m, err := r.Next(src); err != nil || len(m.Payload) != 64<<10 {
			b.Fatal(err)
		}
	}
}

func BenchmarkMask(b *testing.B) {
	buf := pattern(64 << 10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		mask(buf, 0xefbeadde)
	}
}
