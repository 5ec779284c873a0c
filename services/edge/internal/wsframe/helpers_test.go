package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// errWouldBlock is what a non-blocking source returns when no bytes are
// ready.
var errWouldBlock net.Error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "read would block" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// frameSpec describes one client frame for clientFrame.
type frameSpec struct {
	op       Opcode
	payload  []byte
	notFin   bool
	rsv      byte // RSV bits, already shifted (0x40, 0x20, 0x10)
	unmasked bool
	ext      int    // force the length encoding: 0 minimal, 16 or 64
	rawLen   uint64 // with ext 64: announce this length instead of len(payload)
	key      [4]byte
}

// clientFrame encodes a client-to-server frame.
func clientFrame(f frameSpec) []byte {
	b0 := byte(f.op) | f.rsv
	if !f.notFin {
		b0 |= 0x80
	}
	var b1 byte
	if !f.unmasked {
		b1 = 0x80
	}
	n := uint64(len(f.payload))
	if f.rawLen != 0 {
		n = f.rawLen
	}
	out := []byte{b0}
	switch {
	case f.ext == 64 || f.ext == 0 && n > 0xffff:
		out = append(out, b1|127)
		out = binary.BigEndian.AppendUint64(out, n)
	case f.ext == 16 || f.ext == 0 && n > 125:
		out = append(out, b1|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, b1|byte(n))
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	key := f.key
	if key == ([4]byte{}) {
		key = [4]byte{0x37, 0xfa, 0x21, 0x3d}
	}
	out = append(out, key[:]...)
	for i, c := range f.payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func frames(specs ...frameSpec) []byte {
	var out []byte
	for _, s := range specs {
		out = append(out, clientFrame(s)...)
	}
	return out
}

// trickleSource returns one byte, then a would-block error, alternately,
// then io.EOF.
type trickleSource struct {
	data    []byte
	blocked bool
}

func (s *trickleSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	if !s.blocked {
		s.blocked = true
		return 0, errWouldBlock
	}
	s.blocked = false
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = s.data[0]
	s.data = s.data[1:]
	return 1, nil
}

// splitSource returns data in the chunks given by cuts (ascending offsets),
// with a would-block error at every cut, then io.EOF.
type splitSource struct {
	data    []byte
	pos     int
	cuts    []int
	blocked bool
}

func (s *splitSource) Read(p []byte) (int, error) {
	for len(s.cuts) > 0 && s.cuts[0] < s.pos {
		s.cuts = s.cuts[1:]
	}
	if len(s.cuts) > 0 && s.cuts[0] == s.pos && !s.blocked {
		s.blocked = true
		return 0, errWouldBlock
	}
	if s.pos >= len(s.data) {
		return 0, io.EOF
	}
	s.blocked = false
	end := len(s.data)
	if len(s.cuts) > 0 && s.cuts[0] == s.pos {
		s.cuts = s.cuts[1:]
	}
	if len(s.cuts) > 0 {
		end = s.cuts[0]
	}
	n := copy(p, s.data[s.pos:end])
	s.pos += n
	return n, nil
}

// drain reads messages until an error other than would-block, copying control
// payloads (which are only valid until the next Next).
func drain(r *Reader, src io.Reader) ([]Message, error) {
	var msgs []Message
	for {
		m, err := r.Next(src)
		if errors.Is(err, errWouldBlock) {
			continue
		}
		if err != nil {
			return msgs, err
		}
		if m.Op.isControl() {
			m.Payload = append([]byte{}, m.Payload...)
		}
		msgs = append(msgs, m)
	}
}

func sameMessages(t testing.TB, what string, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d messages, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Op != want[i].Op || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("%s: message %d: got op %d len %d, want op %d len %d", what, i,
				got[i].Op, len(got[i].Payload), want[i].Op, len(want[i].Payload))
		}
	}
}

func sameErr(a, b error) bool {
	var pa, pb *ProtocolError
	if errors.As(a, &pa) && errors.As(b, &pb) {
		return *pa == *pb
	}
	return a == b
}
