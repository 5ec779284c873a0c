package wsframe

import (
	"encoding/binary"
	"math/bits"
)

// mask XORs b with the masking key (RFC 6455 5.3) and returns the key rotated
// so that the next byte after b continues the pattern. key holds the four
// key bytes in little-endian order (key byte 0 in the low byte), which lets
// the bulk of b be processed eight bytes at a time. It is its own inverse.
//
// The word-at-a-time technique follows github.com/coder/websocket mask.go.
func mask(b []byte, key uint32) uint32 {
	if len(b) >= 8 {
		k := uint64(key)<<32 | uint64(key)
		for len(b) >= 64 {
			_ = b[63]
			binary.LittleEndian.PutUint64(b[0:], binary.LittleEndian.Uint64(b[0:])^k)
			binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
			binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
			binary.LittleEndian.PutUint64(b[32:], binary.LittleEndian.Uint64(b[32:])^k)
			binary.LittleEndian.PutUint64(b[40:], binary.LittleEndian.Uint64(b[40:])^k)
			binary.LittleEndian.PutUint64(b[48:], binary.LittleEndian.Uint64(b[48:])^k)
			binary.LittleEndian.PutUint64(b[56:], binary.LittleEndian.Uint64(b[56:])^k)
			b = b[64:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	if len(b) >= 4 {
		binary.LittleEndian.PutUint32(b, binary.LittleEndian.Uint32(b)^key)
		b = b[4:]
	}
	for i := range b {
		b[i] ^= byte(key)
		key = bits.RotateLeft32(key, -8)
	}
	return key
}
