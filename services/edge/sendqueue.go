package edge

import "sync"

// sendQueue is a socket's bounded queue of outgoing frames. It allocates
// nothing while empty (an idle socket costs no queue memory) and grows on
// demand up to its limit; a writer takes everything queued at once, which
// is also how frames are batched. Safe for concurrent use. Waking a writer
// is the caller's business (conn.enqueue schedules the socket on the
// writer pool).
type sendQueue struct {
	mu     sync.Mutex
	frames []outFrame
	limit  int
}

// shrinkAbove is the capacity above which a drained queue gives its buffer
// back instead of keeping it for the next burst.
const shrinkAbove = 64

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit}
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
	return true
}

// empty reports whether nothing is queued.
func (q *sendQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) == 0
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
