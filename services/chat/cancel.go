package chat

import (
	"context"
	"sync"
	"time"
)

// cancelOutcome says what a cancel did.
type cancelOutcome int

const (
	cancelApplied    cancelOutcome = iota // a running request was cancelled
	cancelNotOwner                        // the request runs here but belongs to someone else
	cancelRemembered                      // not running here; remembered in case it starts
	cancelDropped                         // not running here and the memory is full
)

// flight is one request running on this replica.
type flight struct {
	owner  string // identity.Subject() of the requester
	cancel context.CancelFunc
}

// earlyCancel is a cancel that arrived before its request started here.
type earlyCancel struct {
	owner string
	at    time.Time
}

// registry maps the request ids running on this replica to their owner and
// cancel function. It is safe for concurrent use; mu guards both maps and
// is never held while calling out, except to a context.CancelFunc.
type registry struct {
	mu    sync.Mutex
	live  map[string]flight
	early map[string]earlyCancel
}

func newRegistry() *registry {
	return &registry{live: make(map[string]flight), early: make(map[string]earlyCancel)}
}

// register records a running request. It returns false when the id is
// already running (a duplicate delivery). A cancel by the same owner that
// arrived within [EarlyCancelTTL] before is applied at once.
func (r *registry) register(id, owner string, cancel context.CancelFunc, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.live[id]; dup {
		return false
	}
	if e, ok := r.early[id]; ok {
		delete(r.early, id)
		if e.owner == owner && now.Sub(e.at) < EarlyCancelTTL {
			cancel()
		}
	}
	r.live[id] = flight{owner: owner, cancel: cancel}
	return true
}

// unregister forgets a finished request.
func (r *registry) unregister(id string) {
	r.mu.Lock()
	delete(r.live, id)
	r.mu.Unlock()
}

// cancel stops request id if it runs here and belongs to owner.
func (r *registry) cancel(id, owner string, now time.Time) cancelOutcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.live[id]; ok {
		if f.owner != owner {
			return cancelNotOwner
		}
		f.cancel()
		return cancelApplied
	}
	if len(r.early) >= MaxEarlyCancels {
		for k, e := range r.early {
			if now.Sub(e.at) >= EarlyCancelTTL {
				delete(r.early, k)
			}
		}
		if len(r.early) >= MaxEarlyCancels {
			return cancelDropped
		}
	}
	r.early[id] = earlyCancel{owner: owner, at: now}
	return cancelRemembered
}

// running returns how many requests are registered.
func (r *registry) running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}
