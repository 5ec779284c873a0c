package edge

import "sync"

// sendQueue is a socket's bounded queue of outgoing frames. It allocates
// nothing while empty (an idle socket costs no queue memory) and grows on
// demand up to its limit; the writer takes everything queued at once, which
// is also how frames are batched. Safe for concurrent use.
type sendQueue struct {
	mu     sync.Mutex
	frames []outFrame
	limit  int
	// wake has room for one signal: "frames were added since the last take".
	wake chan struct{}
}

// shrinkAbove is the capacity above which a drained queue gives its buffer
// back instead of keeping it for the next burst.
const shrinkAbove = 64

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, wake: make(chan struct{}, 1)}
}

// push appends f and reports false, adding nothing, when the queue already
// holds limit frames.
func (q *sendQueue) push(f outFrame) bool {
	q.mu.Lock()
	if len(q.frames) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued frame and leaves spare (emptied; dropped when
// larger than shrinkAbove) as the queue's next buffer. The caller clears
// what it got back and passes it as spare next time, so two buffers
// alternate and nothing is copied.
func (q *sendQueue) take(spare []outFrame) []outFrame {
	if cap(spare) > shrinkAbove {
		spare = nil
	}
	q.mu.Lock()
	out := q.frames
	q.frames = spare[:0]
	q.mu.Unlock()
	return out
}
