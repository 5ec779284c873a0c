package quota

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Stored form of a subject's state.
//
// A value is [stateFormat] followed by, all integers as varints unless
// said otherwise: the day, month and minute periods (start, amount); the
// number of rolling buckets, then each (start, amount); the number of
// reservations, then each (id hash as 8 bytes little-endian, expiry,
// amount, skip 0 or 1); the number of settled ids, then each id hash as 8
// bytes little-endian. An amount is requests, input, output, total and
// spend. Nothing may follow.
//
// Values written by earlier versions are JSON objects (they start with
// '{'); they are still read. Earlier versions cannot read this form and
// answer [ErrCorruptState] for a subject a newer replica has written, so
// all meter replicas sharing a bucket must be upgraded together.
const stateFormat byte = 1

// errShort is the decode failure of a value that ends early.
var errShort = errors.New("value ends early")

// idHash is the 64-bit FNV-1a hash of a request id, as stored for
// reservations and settled ids. Two distinct ids of one subject collide
// with probability about 2^-64 per pair.
func idHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// appendState appends the stored form of s to dst.
func appendState(dst []byte, s *state) []byte {
	dst = append(dst, stateFormat)
	for _, p := range []*period{&s.Day, &s.Month, &s.Minute} {
		dst = binary.AppendVarint(dst, p.Start)
		dst = appendAmount(dst, p.A)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Rolling)))
	for _, b := range s.Rolling {
		dst = binary.AppendVarint(dst, b.Start)
		dst = appendAmount(dst, b.A)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Res)))
	for _, r := range s.Res {
		dst = binary.LittleEndian.AppendUint64(dst, r.ID)
		dst = binary.AppendVarint(dst, r.Expires)
		dst = appendAmount(dst, r.A)
		skip := byte(0)
		if r.Skip {
			skip = 1
		}
		dst = append(dst, skip)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Settled)))
	for _, id := range s.Settled {
		dst = binary.LittleEndian.AppendUint64(dst, id)
	}
	return dst
}

func appendAmount(dst []byte, a amount) []byte {
	for _, v := range [...]int64{a.Requests, a.Input, a.Output, a.Total, a.Spend} {
		dst = binary.AppendVarint(dst, v)
	}
	return dst
}

// decodeState decodes a stored value, in this form or the earlier JSON.
func decodeState(data []byte) (state, error) {
	if len(data) > 0 && data[0] == '{' {
		return decodeLegacy(data)
	}
	if len(data) == 0 || data[0] != stateFormat {
		return state{}, fmt.Errorf("unknown state format (first byte %#x)", firstByte(data))
	}
	d := decoder{b: data[1:]}
	var s state
	for _, p := range []*period{&s.Day, &s.Month, &s.Minute} {
		p.Start = d.varint()
		p.A = d.amount()
	}
	if n := d.count(1 + 5); n > 0 {
		s.Rolling = make([]bucket, n)
		for i := range s.Rolling {
			s.Rolling[i] = bucket{Start: d.varint(), A: d.amount()}
		}
	}
	if n := d.count(8 + 1 + 5 + 1); n > 0 {
		s.Res = make([]reservation, n)
		for i := range s.Res {
			r := &s.Res[i]
			r.ID = d.uint64()
			r.Expires = d.varint()
			r.A = d.amount()
			switch d.byte() {
			case 0:
			case 1:
				r.Skip = true
			default:
				d.fail(errors.New("reservation skip flag is neither 0 nor 1"))
			}
		}
	}
	if n := d.count(8); n > 0 {
		s.Settled = make([]uint64, n)
		for i := range s.Settled {
			s.Settled[i] = d.uint64()
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Errorf("%d bytes after the state", len(d.b)))
	}
	if d.err != nil {
		return state{}, d.err
	}
	return s, nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

// decoder reads varints and fixed words, keeping the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) amount() amount {
	return amount{d.varint(), d.varint(), d.varint(), d.varint(), d.varint()}
}

// count reads a length whose items take at least minSize bytes each, so
// that a corrupt length cannot make a huge allocation.
func (d *decoder) count(minSize int) int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	if v > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("count %d exceeds the %d bytes left", v, len(d.b)))
		return 0
	}
	return int(v)
}

// legacyState is the JSON form earlier versions stored.
type legacyState struct {
	Rolling []bucket `json:"b,omitempty"`
	Day     period   `json:"d"`
	Month   period   `json:"m"`
	Minute  period   `json:"n"`
	Res     []struct {
		ID      string `json:"id"`
		Expires int64  `json:"x"`
		A       amount `json:"a"`
		Skip    bool   `json:"k,omitempty"`
	} `json:"res,omitempty"`
	Settled []string `json:"st,omitempty"`
}

func decodeLegacy(data []byte) (state, error) {
	var l legacyState
	if err := json.Unmarshal(data, &l); err != nil {
		return state{}, err
	}
	s := state{Rolling: l.Rolling, Day: l.Day, Month: l.Month, Minute: l.Minute}
	for _, r := range l.Res {
		s.Res = append(s.Res, reservation{ID: idHash(r.ID), Expires: r.Expires, A: r.A, Skip: r.Skip})
	}
	for _, id := range l.Settled {
		s.Settled = append(s.Settled, idHash(id))
	}
	return s, nil
}
