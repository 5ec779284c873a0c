package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseClose(t *testing.T) {
	t.Parallel()
	withCode := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	cases := []struct {
		name    string
		payload []byte
		code    uint16
		reason  string
		errCode uint16 // 0: no error
	}{
		{"empty", nil, CloseNoStatus, "", 0},
		{"one byte", []byte{3}, 0, "", 1002},
		{"normal", withCode(1000, ""), 1000, "", 0},
		{"with reason", withCode(1001, "gøing"), 1001, "gøing", 0},
		{"1003", withCode(1003, ""), 1003, "", 0},
		{"1007", withCode(1007, ""), 1007, "", 0},
		{"1011", withCode(1011, ""), 1011, "", 0},
		{"1013", withCode(1013, ""), 1013, "", 0},
		{"1014", withCode(1014, ""), 1014, "", 0},
		{"3000", withCode(3000, ""), 3000, "", 0},
		{"4999", withCode(4999, "x"), 4999, "x", 0},
		{"0", withCode(0, ""), 0, "", 1002},
		{"999", withCode(999, ""), 0, "", 1002},
		{"1004", withCode(1004, ""), 0, "", 1002},
		{"1005", withCode(1005, ""), 0, "", 1002},
		{"1006", withCode(1006, ""), 0, "", 1002},
		{"1015", withCode(1015, ""), 0, "", 1002},
		{"1016", withCode(1016, ""), 0, "", 1002},
		{"2999", withCode(2999, ""), 0, "", 1002},
		{"5000", withCode(5000, ""), 0, "", 1002},
		{"65535", withCode(65535, ""), 0, "", 1002},
		{"bad utf-8", withCode(1000, "a\xc3"), 0, "", 1007},
		{"too long", withCode(1000, strings.Repeat("a", 124)), 0, "", 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, reason, err := ParseClose(tc.payload)
			if tc.errCode != 0 {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tc.errCode || pe.Reason == "" {
					t.Fatalf("err = %v, want code %d", err, tc.errCode)
				}
				return
			}
			if err != nil || code != tc.code || reason != tc.reason {
				t.Fatalf("got %d %q %v, want %d %q", code, reason, err, tc.code, tc.reason)
			}
		})
	}
}

// readServerFrame decodes one unmasked, final server frame.
func readServerFrame(t *testing.T, b []byte) (Opcode, []byte, []byte) {
	t.Helper()
	if len(b) < 2 || b[0]&0xf0 != 0x80 || b[1]&0x80 != 0 {
		t.Fatalf("bad header % x", b[:min(len(b), 2)])
	}
	op := Opcode(b[0] & 0x0f)
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		if n <= 125 {
			t.Fatalf("non-minimal 16-bit length %d", n)
		}
	case 127:
		n, h = binary.BigEndian.Uint64(b[2:]), 10
		if n <= 0xffff {
			t.Fatalf("non-minimal 64-bit length %d", n)
		}
	}
	return op, b[h : h+int(n)], b[h+int(n):]
}

func TestAppendFrame(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		p := pattern(n)
		b := AppendFrame([]byte("prefix"), OpBinary, p)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("prefix lost")
		}
		op, payload, rest := readServerFrame(t, b[6:])
		if op != OpBinary || !bytes.Equal(payload, p) || len(rest) != 0 {
			t.Fatalf("n=%d: op %d, len %d, rest %d", n, op, len(payload), len(rest))
		}
	}
}

func TestAppendClose(t *testing.T) {
	t.Parallel()
	if b := AppendClose(nil, 0, "ignored"); !bytes.Equal(b, []byte{0x88, 0}) {
		t.Fatalf("code 0: % x", b)
	}
	cases := []struct{ reason, want string }{
		{"", ""},
		{"bye", "bye"},
		{strings.Repeat("a", 123), strings.Repeat("a", 123)},
		{strings.Repeat("a", 200), strings.Repeat("a", 123)},
		// 122 ASCII bytes then a 2-byte rune: the rune would end at byte 124.
		{strings.Repeat("a", 122) + "é", strings.Repeat("a", 122)},
		// 4-byte runes: 30 fit in 120 bytes, the 31st would end at 124.
		{strings.Repeat("😀", 40), strings.Repeat("😀", 30)},
	}
	for _, tc := range cases {
		b := AppendClose(nil, CloseGoingAway, tc.reason)
		op, payload, rest := readServerFrame(t, b)
		if op != OpClose || len(rest) != 0 || len(payload) > 125 {
			t.Fatalf("op %d, payload %d, rest %d", op, len(payload), len(rest))
		}
		code, reason, err := ParseClose(payload)
		if err != nil || code != CloseGoingAway || reason != tc.want || !utf8.ValidString(reason) {
			t.Fatalf("got %d %q %v, want %q", code, reason, err, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	keyBytes := [4]byte{0xde, 0xad, 0xbe, 0xef}
	key := binary.LittleEndian.Uint32(keyBytes[:])
	for n := range 300 {
		want := pattern(n)
		for i := range want {
			want[i] ^= keyBytes[i%4]
		}
		// Whole, and in two pieces at every split, continuing the key.
		for split := 0; split <= n; split += 1 + split/8 {
			b := pattern(n)
			k := mask(b[:split], key)
			mask(b[split:], k)
			if !bytes.Equal(b, want) {
				t.Fatalf("n=%d split=%d: wrong result", n, split)
			}
		}
	}
}

func TestProtocolErrorError(t *testing.T) {
	t.Parallel()
	_, err := drain(NewReader(10), bytes.NewReader(clientFrame(frameSpec{op: OpText, unmasked: true})))
	if err == io.EOF || err.Error() != "wsframe: protocol error 1002: client frame is not masked" {
		t.Fatalf("Error() = %q", err)
	}
}
