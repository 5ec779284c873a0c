// Package gcfloor keeps the Go garbage collector from running while the
// heap is small.
//
// With Go's default (GOGC=100) a collection starts whenever the heap has
// grown to twice what the last one left live. A Gatehouse process keeps
// only a few MiB live (the meter, chat, an embedded NATS server) while
// it allocates tens of MiB per second, so it collects dozens of times a
// second, and each cycle's stop-the-world phases and mark work land on
// request latency (bench/RESULTS.md: the reserve+settle p99 halves
// without them). A floor F raises the GC percentage while the live heap
// L is small so that the next collection starts at F instead of 2·L:
//
//	percent = max(GOGC, 100·F/L − 100)
//
// Once L·(1+GOGC/100) ≥ F the floor has no effect, so a process with a
// large live heap (an edge holding many sockets) behaves exactly as
// without it. The cost is memory: the heap may grow to F even when far
// less is live. This is the same trade as a heap "ballast" or Uber's GC
// tuner, without allocating anything.
//
// An operator's explicit GOGC environment variable wins: Start then does
// nothing. GOMEMLIMIT keeps working as the runtime documents (the
// collector runs when the total nears the limit, whatever the percentage).
package gcfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultFloor is the heap size below which no collection starts when no
// other floor is configured: 64 MiB.
const DefaultFloor = 64 << 20

// runtimeHeapMinimum is the Go runtime's smallest heap goal at GOGC=100
// (defaultHeapMinimum, 4 MiB). The runtime scales it with the percentage,
// so a percentage above 100·floor/runtimeHeapMinimum would put the goal
// above the floor even for an empty heap; [Percent] stops there.
const runtimeHeapMinimum = 4 << 20

// Floor is a running floor; Stop ends it and restores the GC percentage
// it found.
type Floor struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust and Stop
	set     int        // percentage last set
	sample  []metrics.Sample
}

// Start installs a floor of floor bytes for this process and returns it.
// It returns nil (and changes nothing) when floor is 0 or when the GOGC
// environment variable is set. Only one floor should run per process.
func Start(floor uint64) *Floor {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base <= 0 { // GC disabled by the program: leave it so
		return nil
	}
	f := &Floor{
		floor:  floor,
		base:   base,
		set:    base,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
	}
	f.adjust()
	f.arm()
	return f
}

// Percent is the GC percentage the floor asks for when live bytes are
// live after a collection; base is the percentage without a floor. The
// heap goal it gives is max(floor, live·(1+base/100)), never more: below
// about floor/17 live bytes the runtime's scaled minimum heap
// (runtimeHeapMinimum·percent/100 = floor) is what holds the goal.
func Percent(floor, live uint64, base int) int {
	if live == 0 {
		live = 1
	}
	want := float64(floor)/float64(live)*100 - 100
	want = math.Min(want, float64(floor)*100/runtimeHeapMinimum)
	if want <= float64(base) {
		return base
	}
	return int(want)
}

// arm registers a cleanup that runs after the next collection frees a
// fresh sentinel; the cleanup adjusts the percentage and arms again, so
// the floor follows every cycle without a goroutine of its own or a
// timer waking an idle process.
func (f *Floor) arm() {
	if f.stopped.Load() {
		return
	}
	sentinel := new([64]byte) // not a tiny allocation: freed on its own
	runtime.AddCleanup(sentinel, func(f *Floor) {
		f.adjust()
		f.arm()
	}, f)
}

// adjust sets the percentage for the live heap the last collection left.
// Small changes (within 1/8) are skipped to avoid churn.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	metrics.Read(f.sample)
	live := f.sample[0].Value.Uint64()
	p := Percent(f.floor, live, f.base)
	if diff := p - f.set; diff == 0 || (p != f.base && diff < f.set/8 && -diff < f.set/8) {
		return
	}
	f.set = p
	debug.SetGCPercent(p)
}

// Stop ends the floor and restores the GC percentage Start found.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(f.base)
}

// Current is the GC percentage the floor last set.
func (f *Floor) Current() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set
}
