package wsframe

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// utf8Text returns valid UTF-8 of exactly n bytes mixing 1-4 byte runes.
func utf8Text(n int) []byte {
	runes := []string{"a", "é", "€", "😀"}
	var b []byte
	for i := 0; len(b) < n; i++ {
		r := runes[i%len(runes)]
		if len(b)+len(r) > n {
			r = "a"
		}
		b = append(b, r...)
	}
	return b
}

// sampleStream covers every length encoding, fragmentation with a control
// frame and empty fragments in between, and each control opcode.
func sampleStream() ([]byte, []Message) {
	big := pattern(300)
	t126 := utf8Text(126)
	data := frames(
		frameSpec{op: OpText},
		frameSpec{op: OpText, payload: utf8Text(125), key: [4]byte{1, 2, 3, 4}},
		frameSpec{op: OpText, payload: t126},
		frameSpec{op: OpBinary, payload: big, ext: 64},
		frameSpec{op: OpText, payload: []byte("h\xc3"), notFin: true},
		frameSpec{op: OpPing, payload: []byte("ping!")},
		frameSpec{op: OpContinuation, notFin: true},
		frameSpec{op: OpContinuation, payload: []byte("\xa9llo"), notFin: true},
		frameSpec{op: OpPong},
		frameSpec{op: OpContinuation, payload: []byte(" wörld")},
		frameSpec{op: OpBinary, payload: []byte{0, 1, 2}, notFin: true, ext: 16},
		frameSpec{op: OpContinuation, payload: []byte{3}},
		frameSpec{op: OpClose, payload: append([]byte{0x03, 0xe8}, "bye"...)},
	)
	want := []Message{
		{OpText, []byte{}},
		{OpText, utf8Text(125)},
		{OpText, t126},
		{OpBinary, big},
		{OpPing, []byte("ping!")},
		{OpPong, []byte{}},
		{OpText, []byte("héllo wörld")},
		{OpBinary, []byte{0, 1, 2, 3}},
		{OpClose, append([]byte{0x03, 0xe8}, "bye"...)},
	}
	return data, want
}

func TestReaderWhole(t *testing.T) {
	t.Parallel()
	data, want := sampleStream()
	r := NewReader(1 << 20)
	got, err := drain(r, bytes.NewReader(data))
	if err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	sameMessages(t, "whole", got, want)
	if r.Pending() || r.buf != nil {
		t.Fatalf("Pending = %v, buf held = %v after complete read", r.Pending(), r.buf != nil)
	}
}

func TestReaderTrickle(t *testing.T) {
	t.Parallel()
	data, want := sampleStream()
	r := NewReader(1 << 20)
	blocks := 0
	src := &trickleSource{data: data}
	var got []Message
	for {
		m, err := r.Next(src)
		if err == errWouldBlock {
			blocks++
			// A would-block between bytes never holds a pool buffer: every
			// byte read is consumed at once.
			if r.buf != nil {
				t.Fatal("pool buffer held across a would-block")
			}
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Op.isControl() {
			m.Payload = bytes.Clone(m.Payload)
		}
		got = append(got, m)
	}
	sameMessages(t, "trickle", got, want)
	if blocks < len(data) {
		t.Fatalf("only %d would-blocks for %d bytes", blocks, len(data))
	}
}

func TestReaderSplitEveryOffset(t *testing.T) {
	t.Parallel()
	data, want := sampleStream()
	for i := 0; i <= len(data); i++ {
		for _, cuts := range [][]int{{i}, {i, min(i+1, len(data))}, {i, min(i+7, len(data))}} {
			r := NewReader(1 << 20)
			got, err := drain(r, &splitSource{data: data, cuts: cuts})
			if err != io.EOF {
				t.Fatalf("cuts %v: err = %v", cuts, err)
			}
			sameMessages(t, "cuts "+strconv.Itoa(cuts[0])+","+strconv.Itoa(cuts[1%len(cuts)]), got, want)
			if r.Pending() {
				t.Fatalf("cuts %v: Pending after complete read", cuts)
			}
		}
	}
}

func TestReaderViolations(t *testing.T) {
	t.Parallel()
	text := func(s string) frameSpec { return frameSpec{op: OpText, payload: []byte(s)} }
	start := frameSpec{op: OpText, payload: []byte("abc"), notFin: true}
	cases := []struct {
		name   string
		data   []byte
		limit  int64
		code   uint16
		reason string
		before int // messages returned before the error
	}{
		{"unmasked", clientFrame(frameSpec{op: OpText, payload: []byte("x"), unmasked: true}), 0, 1002, "client frame is not masked", 0},
		{"unmasked ping", clientFrame(frameSpec{op: OpPing, unmasked: true}), 0, 1002, "client frame is not masked", 0},
		{"rsv1", clientFrame(frameSpec{op: OpText, rsv: 0x40}), 0, 1002, "reserved bits RSV1-3 set without a negotiated extension", 0},
		{"rsv2", clientFrame(frameSpec{op: OpBinary, rsv: 0x20}), 0, 1002, "reserved bits RSV1-3 set without a negotiated extension", 0},
		{"rsv3 on ping", clientFrame(frameSpec{op: OpPing, rsv: 0x10}), 0, 1002, "reserved bits RSV1-3 set without a negotiated extension", 0},
		{"fragmented ping", clientFrame(frameSpec{op: OpPing, notFin: true}), 0, 1002, "fragmented control frame", 0},
		{"fragmented close", clientFrame(frameSpec{op: OpClose, notFin: true}), 0, 1002, "fragmented control frame", 0},
		{"ping of 126 bytes", clientFrame(frameSpec{op: OpPing, payload: pattern(126)}), 0, 1002, "control frame payload exceeds 125 bytes", 0},
		{"pong with 64-bit length", clientFrame(frameSpec{op: OpPong, payload: pattern(5), ext: 64}), 0, 1002, "control frame payload exceeds 125 bytes", 0},
		{"continuation first", clientFrame(frameSpec{op: OpContinuation, payload: []byte("x")}), 0, 1002, "continuation frame without a message in progress", 0},
		{"continuation after complete", frames(text("a"), frameSpec{op: OpContinuation}), 0, 1002, "continuation frame without a message in progress", 1},
		{"text during fragments", frames(start, text("x")), 0, 1002, "new data frame while a fragmented message is in progress", 0},
		{"binary during fragments", frames(start, frameSpec{op: OpBinary}), 0, 1002, "new data frame while a fragmented message is in progress", 0},
		{"binary during fragments after ping", frames(start, frameSpec{op: OpPing}, frameSpec{op: OpBinary, notFin: true}), 0, 1002, "new data frame while a fragmented message is in progress", 1},
		{"64-bit length msb", clientFrame(frameSpec{op: OpBinary, ext: 64, rawLen: 1 << 63}), 0, 1002, "64-bit payload length has the most significant bit set", 0},
		{"64-bit length max", clientFrame(frameSpec{op: OpBinary, ext: 64, rawLen: 1<<64 - 1}), 0, 1002, "64-bit payload length has the most significant bit set", 0},
		{"over limit", clientFrame(text("0123456789a")), 10, 1009, "message of 11 bytes exceeds the limit of 10 bytes", 0},
		{"over limit 63-bit", clientFrame(frameSpec{op: OpBinary, ext: 64, rawLen: 1<<63 - 1}), 10, 1009, "message of 9223372036854775807 bytes exceeds the limit of 10 bytes", 0},
		{"over limit fragmented", frames(frameSpec{op: OpBinary, payload: pattern(6), notFin: true}, frameSpec{op: OpPing}, frameSpec{op: OpContinuation, payload: pattern(5)}), 10, 1009, "message of 11 bytes exceeds the limit of 10 bytes", 1},
		{"invalid utf-8", clientFrame(text("ab\xffc")), 0, 1007, "text message is not valid UTF-8", 0},
		{"truncated rune across fragments", frames(frameSpec{op: OpText, payload: []byte("ab"), notFin: true}, frameSpec{op: OpContinuation, payload: []byte("\xe2\x82")}), 0, 1007, "text message is not valid UTF-8", 0},
	}
	for _, op := range []int{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cases = append(cases, struct {
			name   string
			data   []byte
			limit  int64
			code   uint16
			reason string
			before int
		}{"opcode " + strconv.Itoa(op), clientFrame(frameSpec{op: Opcode(op)}), 0, 1002, "unknown opcode " + strconv.Itoa(op), 0})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			for _, mode := range []string{"whole", "trickle"} {
				var src io.Reader = bytes.NewReader(tc.data)
				if mode == "trickle" {
					src = &trickleSource{data: tc.data}
				}
				r := NewReader(limit)
				msgs, err := drain(r, src)
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: err = %v, want ProtocolError", mode, err)
				}
				if pe.Code != tc.code || pe.Reason != tc.reason {
					t.Fatalf("%s: got {%d %q}, want {%d %q}", mode, pe.Code, pe.Reason, tc.code, tc.reason)
				}
				if len(pe.Reason) > 123 {
					t.Fatalf("reason of %d bytes", len(pe.Reason))
				}
				if len(msgs) != tc.before {
					t.Fatalf("%s: %d messages before the error, want %d", mode, len(msgs), tc.before)
				}
				if _, err2 := r.Next(bytes.NewReader(clientFrame(text("ok")))); err2 != err {
					t.Fatalf("%s: error not final: %v", mode, err2)
				}
				if r.Pending() || r.buf != nil {
					t.Fatalf("%s: reader holds state after a protocol error", mode)
				}
			}
		})
	}
}

// headerOnly serves bytes, then blocks forever.
type headerOnly struct{ data []byte }

func (s *headerOnly) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errWouldBlock
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestReaderLimitFromHeader(t *testing.T) {
	t.Parallel()
	// Only the header of a 1 GiB frame arrives: the limit is enforced
	// without waiting for (or allocating) the payload.
	hdr := clientFrame(frameSpec{op: OpBinary, ext: 64, rawLen: 1 << 30})
	r := NewReader(1 << 20)
	_, err := r.Next(&headerOnly{data: hdr})
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig {
		t.Fatalf("err = %v, want 1009", err)
	}
	if want := "message of 1073741824 bytes exceeds the limit of 1048576 bytes"; pe.Reason != want {
		t.Fatalf("reason %q, want %q", pe.Reason, want)
	}
}

func TestReaderLimitBoundary(t *testing.T) {
	t.Parallel()
	const limit = 1000
	cases := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"at limit", clientFrame(frameSpec{op: OpBinary, payload: pattern(limit)}), true},
		{"one over", clientFrame(frameSpec{op: OpBinary, payload: pattern(limit + 1)}), false},
		{"fragmented at limit", frames(
			frameSpec{op: OpText, payload: utf8Text(400), notFin: true},
			frameSpec{op: OpContinuation, payload: utf8Text(599), notFin: true},
			frameSpec{op: OpContinuation, payload: []byte("z")}), true},
		{"fragmented one over", frames(
			frameSpec{op: OpText, payload: utf8Text(400), notFin: true},
			frameSpec{op: OpContinuation, payload: utf8Text(600), notFin: true},
			frameSpec{op: OpContinuation, payload: []byte("z")}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(limit)
			msgs, err := drain(r, bytes.NewReader(tc.data))
			if tc.ok {
				if err != io.EOF || len(msgs) != 1 || len(msgs[0].Payload) != limit {
					t.Fatalf("got %d messages, err %v", len(msgs), err)
				}
				if cap(msgs[0].Payload) > limit {
					t.Fatalf("message capacity %d exceeds the limit", cap(msgs[0].Payload))
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig {
				t.Fatalf("err = %v, want 1009", err)
			}
			if want := "message of 1001 bytes exceeds the limit of 1000 bytes"; pe.Reason != want {
				t.Fatalf("reason %q, want %q", pe.Reason, want)
			}
		})
	}

	t.Run("zero limit", func(t *testing.T) {
		t.Parallel()
		r := NewReader(0)
		msgs, err := drain(r, bytes.NewReader(frames(frameSpec{op: OpText}, frameSpec{op: OpPing, payload: []byte("p")})))
		if err != io.EOF || len(msgs) != 2 {
			t.Fatalf("got %d messages, err %v", len(msgs), err)
		}
	})
}

func TestReaderPending(t *testing.T) {
	t.Parallel()
	two := frames(frameSpec{op: OpText, payload: []byte("one")}, frameSpec{op: OpText, payload: []byte("two")})
	r := NewReader(1 << 20)
	if r.Pending() {
		t.Fatal("new reader is pending")
	}
	src := bytes.NewReader(two)
	if m, err := r.Next(src); err != nil || string(m.Payload) != "one" {
		t.Fatalf("Next = %q, %v", m.Payload, err)
	}
	// Both frames arrived in one Read: the second is still buffered.
	if !r.Pending() || r.buf == nil {
		t.Fatal("second frame buffered but not pending")
	}
	if m, err := r.Next(src); err != nil || string(m.Payload) != "two" {
		t.Fatalf("Next = %q, %v", m.Payload, err)
	}
	if r.Pending() || r.buf != nil {
		t.Fatal("pending after all bytes were consumed")
	}

	// A partial header is kept in the struct; no pool buffer is held.
	r = NewReader(1 << 20)
	frame := clientFrame(frameSpec{op: OpBinary, payload: pattern(70000)})
	s := &splitSource{data: frame, cuts: []int{5, 10, 6000}}
	if _, err := r.Next(s); err != errWouldBlock {
		t.Fatalf("err = %v", err)
	}
	if !r.Pending() || r.buf != nil {
		t.Fatalf("partial header: Pending %v, buffer held %v", r.Pending(), r.buf != nil)
	}
	// A partial payload is in the message slice; no pool buffer is held.
	if _, err := r.Next(s); err != errWouldBlock {
		t.Fatalf("err = %v", err)
	}
	if _, err := r.Next(s); err != errWouldBlock {
		t.Fatalf("err = %v", err)
	}
	if !r.Pending() || r.buf != nil {
		t.Fatalf("partial payload: Pending %v, buffer held %v", r.Pending(), r.buf != nil)
	}
	m, err := r.Next(s)
	if err != nil || !bytes.Equal(m.Payload, pattern(70000)) {
		t.Fatalf("Next: len %d, %v", len(m.Payload), err)
	}
	if r.Pending() || r.buf != nil {
		t.Fatal("pending after a complete frame")
	}
}

// recordingSource records the size of every Read.
type recordingSource struct {
	r     io.Reader
	sizes []int
}

func (s *recordingSource) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

func TestReaderDirectRead(t *testing.T) {
	t.Parallel()
	const n = 1 << 20
	frame := clientFrame(frameSpec{op: OpBinary, payload: pattern(n)})
	src := &recordingSource{r: bytes.NewReader(frame)}
	r := NewReader(n)
	m, err := r.Next(src)
	if err != nil || !bytes.Equal(m.Payload, pattern(n)) {
		t.Fatalf("Next: len %d, %v", len(m.Payload), err)
	}
	// The header arrives through a pool buffer with the first payload bytes;
	// the rest is read straight into the message.
	hdr := len(frame) - n
	want := []int{bufSize, n - (bufSize - hdr)}
	if len(src.sizes) != 2 || src.sizes[0] != want[0] || src.sizes[1] != want[1] {
		t.Fatalf("read sizes %v, want %v", src.sizes, want)
	}
	if cap(m.Payload) != n {
		t.Fatalf("cap %d, want %d (sized from the header)", cap(m.Payload), n)
	}
}

func TestReaderPrime(t *testing.T) {
	t.Parallel()
	data, want := sampleStream()
	for _, k := range []int{0, 1, 2, 7, 100, len(data)} {
		r := NewReader(1 << 20)
		r.Prime(data[:k])
		got, err := drain(r, &trickleSource{data: data[k:]})
		if err != io.EOF {
			t.Fatalf("prime %d: %v", k, err)
		}
		sameMessages(t, "prime "+strconv.Itoa(k), got, want)
	}

	// More than a pool buffer, primed in two pieces.
	big := frames(frameSpec{op: OpBinary, payload: pattern(3000)}, frameSpec{op: OpBinary, payload: pattern(3000)})
	r := NewReader(1 << 20)
	r.Prime(big[:10])
	r.Prime(big[10:])
	got, err := drain(r, bytes.NewReader(nil))
	if err != io.EOF {
		t.Fatal(err)
	}
	sameMessages(t, "big prime", got, []Message{{OpBinary, pattern(3000)}, {OpBinary, pattern(3000)}})
	if r.Pending() {
		t.Fatal("pending")
	}
}

// dataWithError returns all its bytes together with err.
type dataWithError struct {
	data []byte
	err  error
}

func (s *dataWithError) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, s.err
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, s.err
}

func TestReaderReadErrors(t *testing.T) {
	t.Parallel()
	frame := clientFrame(frameSpec{op: OpText, payload: []byte("last")})
	netErr := errors.New("connection reset")
	for _, err := range []error{io.EOF, netErr, errWouldBlock} {
		r := NewReader(100)
		src := &dataWithError{data: frame, err: err}
		m, got := r.Next(src)
		if got != nil || string(m.Payload) != "last" {
			t.Fatalf("%v: Next = %q, %v; want the message first", err, m.Payload, got)
		}
		if _, got := r.Next(src); got != err {
			t.Fatalf("Next = %v, want %v unchanged", got, err)
		}
	}

	// An error mid-frame is returned unchanged; the frame resumes.
	r := NewReader(100)
	if _, err := r.Next(&dataWithError{data: frame[:3], err: netErr}); err != netErr {
		t.Fatalf("err = %v", err)
	}
	if m, err := r.Next(bytes.NewReader(frame[3:])); err != nil || string(m.Payload) != "last" {
		t.Fatalf("resume: %q, %v", m.Payload, err)
	}
}

func TestReaderControlBetweenFragmentsKeepsMessage(t *testing.T) {
	t.Parallel()
	// A large fragmented message with pings in between, read in small
	// pieces, comes back whole.
	var specs []frameSpec
	var want []Message
	var whole []byte
	for i := range 20 {
		op := OpContinuation
		if i == 0 {
			op = OpText
		}
		part := []byte(strings.Repeat(string(rune('a'+i)), 5000))
		whole = append(whole, part...)
		specs = append(specs, frameSpec{op: op, payload: part, notFin: i < 19})
		if i%3 == 0 {
			specs = append(specs, frameSpec{op: OpPing, payload: []byte{byte(i)}})
			want = append(want, Message{OpPing, []byte{byte(i)}})
		}
	}
	want = append(want, Message{OpText, whole})
	data := frames(specs...)
	var cuts []int
	for i := 0; i < len(data); i += 977 {
		cuts = append(cuts, i)
	}
	got, err := drain(NewReader(1<<20), &splitSource{data: data, cuts: cuts})
	if err != io.EOF {
		t.Fatal(err)
	}
	sameMessages(t, "fragments", got, want)
}
