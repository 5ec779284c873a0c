package wsframe

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// FuzzReader feeds arbitrary bytes to a Reader whole, split at arbitrary
// points with would-block errors in between, and one byte at a time. The
// reader must never panic, never return a data message over the limit, and
// give the same messages and final error in every case.
func FuzzReader(f *testing.F) {
	data, _ := sampleStream()
	f.Add(data, uint64(1), uint16(1000))
	f.Add(data, uint64(2), uint16(125))
	f.Add(frames(
		frameSpec{op: OpText, payload: []byte("frag"), notFin: true},
		frameSpec{op: OpPing, payload: []byte("p")},
		frameSpec{op: OpContinuation, payload: []byte("ment")},
	), uint64(3), uint16(8))
	f.Add(clientFrame(frameSpec{op: OpBinary, payload: pattern(5000)}), uint64(4), uint16(6000))
	f.Add(clientFrame(frameSpec{op: OpBinary, payload: pattern(300), ext: 64}), uint64(5), uint16(299))
	f.Add(clientFrame(frameSpec{op: OpText, payload: []byte("\xff")}), uint64(6), uint16(10))
	f.Add(clientFrame(frameSpec{op: OpClose, payload: []byte{3, 0xe8, 'x'}}), uint64(7), uint16(0))
	f.Add(clientFrame(frameSpec{op: OpText, unmasked: true}), uint64(8), uint16(10))
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}, uint64(9), uint16(10))

	f.Fuzz(func(t *testing.T, data []byte, seed uint64, limit16 uint16) {
		limit := int64(limit16)
		run := func(src io.Reader, primed []byte) ([]Message, error) {
			r := NewReader(limit)
			r.Prime(primed)
			msgs, err := drain(r, src)
			if _, ok := err.(*ProtocolError); ok && r.Pending() {
				t.Fatal("pending after a protocol error")
			}
			if err == io.EOF && r.buf != nil {
				t.Fatal("pool buffer held at EOF")
			}
			return msgs, err
		}
		whole, werr := run(bytes.NewReader(data), nil)
		for _, m := range whole {
			if m.Op == OpContinuation {
				t.Fatal("continuation opcode returned")
			}
			if !m.Op.isControl() && int64(len(m.Payload)) > limit {
				t.Fatalf("message of %d bytes over limit %d", len(m.Payload), limit)
			}
			if m.Op.isControl() && len(m.Payload) > maxControlPayload {
				t.Fatalf("control payload of %d bytes", len(m.Payload))
			}
		}
		if werr != io.EOF {
			if pe, ok := werr.(*ProtocolError); !ok || len(pe.Reason) > 123 || pe.Reason == "" {
				t.Fatalf("unexpected error %v", werr)
			}
		}

		rng := rand.New(rand.NewPCG(seed, uint64(len(data))))
		var cuts []int
		for i := 0; i < len(data); i += 1 + rng.IntN(20) {
			cuts = append(cuts, i)
		}
		primeN := rng.IntN(len(data) + 1)
		variants := []struct {
			name   string
			src    io.Reader
			primed []byte
		}{
			{"split", &splitSource{data: data, cuts: cuts}, nil},
			{"trickle", &trickleSource{data: data}, nil},
			{"primed", bytes.NewReader(data[primeN:]), data[:primeN]},
		}
		for _, v := range variants {
			msgs, err := run(v.src, v.primed)
			if !sameErr(err, werr) {
				t.Fatalf("%s: err %v, whole %v", v.name, err, werr)
			}
			sameMessages(t, v.name, msgs, whole)
		}
	})
}
