package wsframe

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Opcode is a WebSocket frame opcode (RFC 6455 5.2).
type Opcode byte

// Opcodes defined by RFC 6455 5.2. The others (3-7, 11-15) are reserved and
// rejected by [Reader].
const (
	OpContinuation Opcode = 0
	OpText         Opcode = 1
	OpBinary       Opcode = 2
	OpClose        Opcode = 8
	OpPing         Opcode = 9
	OpPong         Opcode = 10
)

// isControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op Opcode) isControl() bool { return op&0x8 != 0 }

// Close codes (RFC 6455 7.4.1) the reader reports and the server sends.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent; reported for an empty close payload
	CloseAbnormal        uint16 = 1006 // never sent; the connection dropped without a close frame
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
	CloseTryAgainLater   uint16 = 1013
)

const (
	// maxControlPayload is the largest control frame payload (RFC 6455 5.5).
	maxControlPayload = 125
	// maxCloseReason is the largest close reason: a control payload less the
	// two-byte code.
	maxCloseReason = maxControlPayload - 2
	// maxHeader is the largest frame header: 2 bytes, a 64-bit length and a
	// masking key.
	maxHeader = 2 + 8 + 4
)

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 7.4; 1012-1014 are registered with IANA).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose reads a close frame's payload. An empty payload yields
// ([CloseNoStatus], "", nil). A payload of one byte, an invalid code
// (RFC 6455 7.4: below 1000, 1004-1006, 1015, unassigned 1016-2999, 5000 and
// above) or a reason that is not UTF-8 yields a [*ProtocolError].
func ParseClose(payload []byte) (code uint16, reason string, err error) {
	switch {
	case len(payload) == 0:
		return CloseNoStatus, "", nil
	case len(payload) == 1:
		return 0, "", protoErr(CloseProtocolError, "close payload of 1 byte cannot hold a status code")
	case len(payload) > maxControlPayload:
		return 0, "", protoErr(CloseProtocolError, "close payload of "+strconv.Itoa(len(payload))+" bytes exceeds 125")
	}
	code = binary.BigEndian.Uint16(payload)
	if !validCloseCode(code) {
		return 0, "", protoErr(CloseProtocolError, "invalid close code "+strconv.Itoa(int(code)))
	}
	if !utf8.Valid(payload[2:]) {
		return 0, "", protoErr(CloseInvalidPayload, "close reason is not valid UTF-8")
	}
	return code, string(payload[2:]), nil
}

// AppendFrame appends one final, unmasked server frame with opcode op and
// payload to dst and returns the extended slice. The caller keeps control
// payloads within 125 bytes.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = appendHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// appendHeader appends a final, unmasked frame header.
func appendHeader(dst []byte, op Opcode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// AppendClose appends a close frame with code and reason to dst and returns
// the extended slice. The reason is truncated to 123 bytes on a UTF-8
// boundary. Code 0 yields an empty payload (no status; reason is ignored).
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 {
		return appendHeader(dst, OpClose, 0)
	}
	reason = truncateUTF8(reason, maxCloseReason)
	dst = appendHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// truncateUTF8 shortens s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
