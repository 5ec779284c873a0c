package edge

import (
	"sync"
)

// Writing: a socket has no writer goroutine of its own while it is idle.
// When frames are queued, whoever sets conn.scheduled (false to true)
// starts one short-lived writer goroutine for that socket (writeBursts),
// which writes everything queued as one batch, again while more arrives,
// and exits once the queue is empty. At most one writer runs per socket,
// so its frames are written in queue order; a peer that stops reading
// blocks only its own writer (for at most WriteTimeout), never another
// socket's delivery. The number of writers alive at once is bounded by the
// number of sockets with frames in flight, and Service.writing counts them
// so Run returns only after the last one.

// writerState is a writer's scratch space, recycled across writers.
type writerState struct {
	batch []outFrame
	buf   []byte // one data frame's JSON
	out   []byte // the encoded batch
}

var writerStates = sync.Pool{New: func() any { return new(writerState) }}

// wake starts the socket's writer unless one is already running.
func (c *conn) wake() {
	if c.scheduled.CompareAndSwap(false, true) {
		c.s.writing.Add(1)
		go c.writeBursts()
	}
}

// writeBursts is the socket's writer: it owns the socket's writes (and its
// keep-alive timer) while c.scheduled is set. It closes a failed socket
// (finish) and then leaves scheduled set, so no writer ever starts again.
func (c *conn) writeBursts() {
	defer c.s.writing.Done()
	w := writerStates.Get().(*writerState)
	defer writerStates.Put(w)
	for {
		if c.failed.Load() {
			c.finish(w)
			return
		}
		c.flush(w)
		c.scheduled.Store(false)
		if !c.failed.Load() && c.queue.empty() {
			return
		}
		// More arrived (or the socket failed) after the batch was taken:
		// carry on, unless another goroutine already started a writer.
		if !c.scheduled.CompareAndSwap(false, true) {
			return
		}
	}
}
