// Package hub shares NATS subscriptions between the WebSocket subscriptions
// of one edge process: however many sockets subscribe to a subject, the
// process holds one NATS subscription for it (refcounted), and each message
// is handed to every local subscriber registered on that subject.
package hub

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// ErrClosed is returned by [Hub.Add] after [Hub.Close].
var ErrClosed = errors.New("hub: closed")

// Sink receives messages for local subscriptions. Deliver, Flush and Reject
// are called from NATS delivery goroutines while the hub holds its read
// lock: they must not block and must not call back into the hub.
type Sink interface {
	// Deliver hands over one event for subscription id. event is the NATS
	// payload already encoded as a JSON string, once for all subscribers;
	// it is shared between them and must not be modified. The sink may
	// hold it back (queued) until Flush.
	Deliver(id string, event []byte)
	// Flush ends a batch of Deliver calls: the sink sends what it queued.
	// The hub calls it on every member of a subject once no more messages
	// are waiting on that subject, or after at most the hub's batch size of
	// events, so delivery is batched exactly when messages arrive faster
	// than they are handed over.
	Flush()
	// Reject reports that an event for subscription id was not delivered
	// because its payload of size bytes is above the hub's limit.
	Reject(id string, size int)
}

// Member is one local subscription: a sink and the client's subscription id.
type Member struct {
	Sink Sink
	ID   string
}

type subject struct {
	sub     *nats.Subscription
	members map[Member]struct{}
	// unflushed counts events delivered since the last Flush; only the
	// subject's NATS handler (one goroutine at a time) touches it.
	unflushed int
}

// Hub refcounts NATS subscriptions. All methods are safe for concurrent use.
//
// Lock order: Hub.mu is taken before anything a Sink locks inside Deliver.
type Hub struct {
	nc       *nats.Conn
	maxEvent int
	batch    int
	mu       sync.RWMutex
	subs     map[string]*subject
	closed   bool
	// subscribed counts the NATS subscriptions created (a subject's first
	// local member); read by Subscribed.
	subscribed atomic.Uint64
}

// New returns a hub subscribing on nc. Messages whose payload is above
// maxEvent bytes are not delivered: each member gets Reject instead
// (maxEvent <= 0 means no limit). At most batch events of one subject are
// delivered before its members are flushed (batch <= 1 flushes after every
// event).
func New(nc *nats.Conn, maxEvent, batch int) *Hub {
	return &Hub{nc: nc, maxEvent: maxEvent, batch: max(batch, 1), subs: make(map[string]*subject)}
}

// Add registers m on every subject, creating NATS subscriptions for
// subjects nobody in this process listened to yet, then flushes the
// connection (bounded by flushTimeout) so the interest is live on the
// server when Add returns. On error nothing stays registered.
func (h *Hub) Add(subjects []string, m Member, flushTimeout time.Duration) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	for i, subj := range subjects {
		st := h.subs[subj]
		if st == nil {
			sub, err := h.nc.Subscribe(subj, h.handler(subj))
			if err != nil {
				h.removeLocked(subjects[:i], m)
				h.mu.Unlock()
				return fmt.Errorf("hub: subscribe %s: %w", subj, err)
			}
			st = &subject{sub: sub, members: make(map[Member]struct{})}
			h.subs[subj] = st
			h.subscribed.Add(1)
		}
		st.members[m] = struct{}{}
	}
	h.mu.Unlock()
	if err := h.nc.FlushTimeout(flushTimeout); err != nil {
		h.Remove(subjects, m)
		return fmt.Errorf("hub: flush subscriptions: %w", err)
	}
	return nil
}

// Remove unregisters m from every subject, unsubscribing from NATS when a
// subject has no local member left.
func (h *Hub) Remove(subjects []string, m Member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(subjects, m)
}

func (h *Hub) removeLocked(subjects []string, m Member) {
	for _, subj := range subjects {
		st := h.subs[subj]
		if st == nil {
			continue
		}
		delete(st.members, m)
		if len(st.members) == 0 {
			_ = st.sub.Unsubscribe() // fails only when the connection is closed
			delete(h.subs, subj)
		}
	}
}

func (h *Hub) handler(subj string) nats.MsgHandler {
	return func(msg *nats.Msg) {
		h.mu.RLock()
		defer h.mu.RUnlock()
		st := h.subs[subj]
		if st == nil || st.sub != msg.Sub || len(st.members) == 0 {
			return // a late message for a subscription that was just dropped
		}
		if h.maxEvent > 0 && len(msg.Data) > h.maxEvent {
			for m := range st.members {
				m.Sink.Reject(m.ID, len(msg.Data))
			}
			return
		}
		event := protocol.AppendJSONString(make([]byte, 0, len(msg.Data)+16), msg.Data)
		for m := range st.members {
			m.Sink.Deliver(m.ID, event)
		}
		st.unflushed++
		if st.unflushed < h.batch {
			// Pending counts the message being handled too (nats.go
			// decrements it after the handler returns).
			if waiting, _, err := msg.Sub.Pending(); err == nil && waiting > 1 {
				return // the next message follows at once; flush after it
			}
		}
		st.unflushed = 0
		for m := range st.members {
			m.Sink.Flush()
		}
	}
}

// NumSubscriptions returns how many NATS subscriptions the hub holds.
func (h *Hub) NumSubscriptions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

// Subscribed returns how many NATS subscriptions the hub has created so
// far (each time a subject got its first local member).
func (h *Hub) Subscribed() uint64 { return h.subscribed.Load() }

// NumMembers returns how many local subscriptions are registered on subj.
func (h *Hub) NumMembers(subj string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if st := h.subs[subj]; st != nil {
		return len(st.members)
	}
	return 0
}

// Close unsubscribes everything; later calls to Add fail with [ErrClosed].
// It is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for subj, st := range h.subs {
		_ = st.sub.Unsubscribe()
		delete(h.subs, subj)
	}
}
