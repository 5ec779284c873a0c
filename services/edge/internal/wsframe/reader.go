package wsframe

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"unicode/utf8"
)

// bufSize is the size of the pooled read buffers.
const bufSize = 4096

// directMin is the smallest remainder of a data frame payload that is read
// straight from the source into the message slice instead of through a pool
// buffer. Smaller remainders go through a buffer so one Read can also pick
// up the frames that follow.
const directMin = bufSize

// maxEmptyReads bounds successive (0, nil) results from a source, as bufio
// does.
const maxEmptyReads = 100

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

// Message is one complete message or control frame.
type Message struct {
	// Op is OpText, OpBinary, OpClose, OpPing or OpPong; never OpContinuation.
	Op Opcode
	// Payload is unmasked. Text/binary: a new slice the caller owns.
	// Control frames: valid only until the next Next call.
	Payload []byte
}

// Reader reads client-to-server frames. It holds no byte buffer while no
// partial frame is pending (an idle socket's Reader is just its struct);
// read buffers come from a sync.Pool (4 KiB) and go back as soon as they hold
// no unread bytes. Payloads of data frames are unmasked into the message
// slice, which is sized from the frame header (bounded by the limit), and
// large remainders are read into it directly.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	limit int64
	err   *ProtocolError // final
	rerr  error          // error from a Read that also returned bytes

	// buf holds bytes read but not yet consumed, buf[rpos:wpos]; nil when
	// there are none.
	buf        *[]byte
	rpos, wpos int

	// The frame being read. While !inPayload, hdr[:hdrN] is the part of its
	// header received so far.
	hdr       [maxHeader]byte
	hdrN      int
	inPayload bool
	fin       bool
	op        Opcode
	key       uint32 // masking key, rotated to the next payload byte
	remaining int64  // payload bytes still to read

	// Payload of the control frame being read.
	ctrl  [maxControlPayload]byte
	ctrlN int

	// The data message being assembled: msg[:msgN] is unmasked payload,
	// msg[msgN:] is reserved for the payload announced by the current frame.
	msg   []byte
	msgN  int
	msgOp Opcode // OpText or OpBinary while a message is in progress, else 0
}

// NewReader returns a Reader that accepts data messages of at most limit
// bytes after reassembly of fragments; a larger one is a [*ProtocolError]
// with [CloseMessageTooBig], detected from the frame header before its
// payload is read. A negative limit counts as 0. Control frames carry at most
// 125 bytes and are not subject to limit.
func NewReader(limit int64) *Reader {
	limit = max(limit, 0)
	if uint64(limit) > math.MaxInt {
		limit = math.MaxInt
	}
	return &Reader{limit: limit}
}

// Prime hands the reader bytes already read from the connection, such as
// what net/http buffered after the upgrade request. b is copied; its bytes
// are read before anything from the source.
func (r *Reader) Prime(b []byte) {
	if len(b) == 0 || r.err != nil {
		return
	}
	if r.buf == nil {
		r.buf = bufPool.Get().(*[]byte)
		r.rpos, r.wpos = 0, 0
	}
	unread := r.wpos - r.rpos
	if buf := *r.buf; r.wpos+len(b) <= len(buf) {
		r.wpos += copy(buf[r.wpos:], b)
		return
	} else if unread+len(b) <= len(buf) {
		copy(buf, buf[r.rpos:r.wpos])
		r.rpos, r.wpos = 0, unread
		r.wpos += copy(buf[r.wpos:], b)
		return
	}
	// Too much for a pool buffer: use a private one, never returned to the
	// pool.
	nb := make([]byte, unread+len(b))
	copy(nb, (*r.buf)[r.rpos:r.wpos])
	copy(nb[unread:], b)
	r.releaseBuf()
	r.buf, r.rpos, r.wpos = &nb, 0, len(nb)
}

// Pending reports whether the reader holds anything beyond its struct: unread
// bytes in a pool buffer, a partial frame, or a data message still being
// assembled. After [Reader.Next] returns a message with Pending true, the
// bytes already buffered may complete further frames, so call Next again
// before waiting for the connection to become readable.
func (r *Reader) Pending() bool {
	return r.buf != nil || r.hdrN > 0 || r.inPayload || r.msgOp != 0
}

// Next returns the next message: a data message reassembled from its
// fragments, or a control frame as it arrives (also between the fragments of
// a data message).
//
// When src.Read returns an error (io.EOF, a network error, or a "would block"
// error from a non-blocking source), Next returns that error unchanged,
// keeping everything read so far, and a later Next resumes exactly there.
// (When a Read returns bytes together with an error, the bytes are used first
// and the error is returned by the next Read that is needed, except a
// net.Error with Timeout() true, which is dropped as the source will report
// it again.) A violation by the peer is a [*ProtocolError], which is final:
// every later call returns it.
func (r *Reader) Next(src io.Reader) (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	for {
		if !r.inPayload {
			need := r.headerNeed()
			if r.hdrN < need {
				if r.rpos == r.wpos {
					if err := r.fill(src); err != nil {
						return Message{}, err
					}
				}
				n := copy(r.hdr[r.hdrN:need], (*r.buf)[r.rpos:r.wpos])
				r.hdrN += n
				r.rpos += n
				r.releaseIfEmpty()
				if r.hdrN < need {
					continue
				}
			}
			var perr *ProtocolError
			if need == 2 {
				perr = r.checkStart()
			} else {
				perr = r.beginFrame()
			}
			if perr != nil {
				return Message{}, r.fail(perr)
			}
			if !r.inPayload {
				continue
			}
		}

		if r.remaining > 0 {
			if r.rpos == r.wpos {
				if !r.op.isControl() && r.remaining >= directMin {
					if err := r.readDirect(src); err != nil {
						return Message{}, err
					}
					continue
				}
				if err := r.fill(src); err != nil {
					return Message{}, err
				}
			}
			r.consumePayload()
			if r.remaining > 0 {
				continue
			}
		}

		m, ok, perr := r.endFrame()
		if perr != nil {
			return Message{}, r.fail(perr)
		}
		if ok {
			return m, nil
		}
	}
}

// headerNeed returns the length of the current frame's header as far as it
// is known: 2 until the first two bytes are in, then the full length.
func (r *Reader) headerNeed() int {
	if r.hdrN < 2 {
		return 2
	}
	switch r.hdr[1] & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// checkStart validates the first two header bytes, so that a bad frame is
// rejected before the rest of its header arrives.
func (r *Reader) checkStart() *ProtocolError {
	b0, b1 := r.hdr[0], r.hdr[1]
	fin := b0&0x80 != 0
	op := Opcode(b0 & 0x0f)
	len7 := b1 & 0x7f
	switch {
	case b0&0x70 != 0:
		return protoErr(CloseProtocolError, "reserved bits RSV1-3 set without a negotiated extension")
	case op > OpBinary && op < OpClose || op > OpPong:
		return protoErr(CloseProtocolError, "unknown opcode "+strconv.Itoa(int(op)))
	case b1&0x80 == 0:
		return protoErr(CloseProtocolError, "client frame is not masked")
	case op.isControl() && !fin:
		return protoErr(CloseProtocolError, "fragmented control frame")
	case op.isControl() && len7 > maxControlPayload:
		return protoErr(CloseProtocolError, "control frame payload exceeds 125 bytes")
	case op == OpContinuation && r.msgOp == 0:
		return protoErr(CloseProtocolError, "continuation frame without a message in progress")
	case (op == OpText || op == OpBinary) && r.msgOp != 0:
		return protoErr(CloseProtocolError, "new data frame while a fragmented message is in progress")
	}
	return nil
}

// beginFrame interprets the complete header in r.hdr and prepares to read the
// payload.
func (r *Reader) beginFrame() *ProtocolError {
	n := r.hdrN
	var length uint64
	switch r.hdr[1] & 0x7f {
	case 126:
		length = uint64(binary.BigEndian.Uint16(r.hdr[2:]))
	case 127:
		length = binary.BigEndian.Uint64(r.hdr[2:])
		if length>>63 != 0 {
			return protoErr(CloseProtocolError, "64-bit payload length has the most significant bit set")
		}
	default:
		length = uint64(r.hdr[1] & 0x7f)
	}
	r.fin = r.hdr[0]&0x80 != 0
	r.op = Opcode(r.hdr[0] & 0x0f)
	r.key = binary.LittleEndian.Uint32(r.hdr[n-4:])
	r.hdrN = 0
	r.inPayload = true
	r.remaining = int64(length)

	if r.op.isControl() {
		r.ctrlN = 0
		return nil
	}
	have := int64(len(r.msg)) // == r.msgN: the previous frame is complete
	if r.remaining > r.limit-have {
		return protoErr(CloseMessageTooBig, "message of "+strconv.FormatUint(uint64(have)+length, 10)+
			" bytes exceeds the limit of "+strconv.FormatInt(r.limit, 10)+" bytes")
	}
	if r.op != OpContinuation {
		r.msgOp = r.op
	}
	r.growMsg(int(have + r.remaining))
	return nil
}

// growMsg extends r.msg to length n (at most r.limit), growing its capacity
// geometrically for fragmented messages but never beyond r.limit.
func (r *Reader) growMsg(n int) {
	if n <= cap(r.msg) {
		r.msg = r.msg[:n]
		return
	}
	c := n
	if len(r.msg) > 0 {
		c = min(max(n, 2*cap(r.msg)), int(r.limit))
	}
	nb := make([]byte, n, c)
	copy(nb, r.msg)
	r.msg = nb
}

// consumePayload moves buffered payload bytes of the current frame to their
// destination and unmasks them.
func (r *Reader) consumePayload() {
	src := (*r.buf)[r.rpos:r.wpos]
	if int64(len(src)) > r.remaining {
		src = src[:r.remaining]
	}
	var dst []byte
	if r.op.isControl() {
		dst = r.ctrl[r.ctrlN : r.ctrlN+len(src)]
		r.ctrlN += len(src)
	} else {
		dst = r.msg[r.msgN : r.msgN+len(src)]
		r.msgN += len(src)
	}
	copy(dst, src)
	r.key = mask(dst, r.key)
	r.rpos += len(src)
	r.remaining -= int64(len(src))
	r.releaseIfEmpty()
}

// readDirect reads the rest of the current data frame's payload from src
// straight into the message slice.
func (r *Reader) readDirect(src io.Reader) error {
	p := r.msg[r.msgN : r.msgN+int(r.remaining)]
	n, err := r.read(src, p)
	if err != nil {
		return err
	}
	r.key = mask(p[:n], r.key)
	r.msgN += n
	r.remaining -= int64(n)
	return nil
}

// endFrame finishes a frame whose payload is complete. ok reports whether it
// completed a message to return.
func (r *Reader) endFrame() (m Message, ok bool, perr *ProtocolError) {
	r.inPayload = false
	if r.op.isControl() {
		return Message{Op: r.op, Payload: r.ctrl[:r.ctrlN]}, true, nil
	}
	if !r.fin {
		return Message{}, false, nil
	}
	m = Message{Op: r.msgOp, Payload: r.msg}
	r.msg, r.msgN, r.msgOp = nil, 0, 0
	if m.Op == OpText && !utf8.Valid(m.Payload) {
		return Message{}, false, protoErr(CloseInvalidPayload, "text message is not valid UTF-8")
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	return m, true, nil
}

// fill reads from src into a pool buffer; it is called only when no unread
// bytes are buffered.
func (r *Reader) fill(src io.Reader) error {
	if r.buf == nil {
		r.buf = bufPool.Get().(*[]byte)
	}
	n, err := r.read(src, *r.buf)
	r.rpos, r.wpos = 0, n
	if err != nil {
		r.releaseIfEmpty()
	}
	return err
}

// read reads at least one byte into p, or returns an error and no bytes.
func (r *Reader) read(src io.Reader, p []byte) (int, error) {
	if err := r.rerr; err != nil {
		r.rerr = nil
		return 0, err
	}
	for range maxEmptyReads {
		n, err := src.Read(p)
		if n < 0 || n > len(p) {
			return 0, errInvalidRead
		}
		if n > 0 {
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				r.rerr = err
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// releaseIfEmpty returns the buffer to the pool once it holds no unread
// bytes.
func (r *Reader) releaseIfEmpty() {
	if r.buf != nil && r.rpos == r.wpos {
		r.releaseBuf()
	}
}

func (r *Reader) releaseBuf() {
	if cap(*r.buf) == bufSize {
		bufPool.Put(r.buf)
	}
	r.buf, r.rpos, r.wpos = nil, 0, 0
}

// fail records a protocol error as final and drops all held memory.
func (r *Reader) fail(perr *ProtocolError) error {
	r.err = perr
	if r.buf != nil {
		r.releaseBuf()
	}
	r.msg, r.msgN, r.msgOp = nil, 0, 0
	r.hdrN, r.inPayload, r.remaining = 0, false, 0
	return perr
}
