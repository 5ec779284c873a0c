package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		floor, live uint64
		base, want  int
	}{
		{"small live heap: goal at the floor", 64 * mib, 8 * mib, 100, 700},
		{"tiny live heap: capped so the runtime minimum is the floor", 64 * mib, 100 << 10, 100, 1600},
		{"no live bytes yet", 64 * mib, 0, 100, 1600},
		{"live heap at half the floor: the default already reaches it", 64 * mib, 32 * mib, 100, 100},
		{"live heap above the floor", 64 * mib, 200 * mib, 100, 100},
		{"higher base wins", 64 * mib, 16 * mib, 400, 400},
		{"floor below the runtime minimum never lowers the base", 2 * mib, 100 << 10, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.floor, tc.live, tc.base); got != tc.want {
				t.Fatalf("Percent(%d MiB, %d B, %d) = %d, want %d", tc.floor/mib, tc.live, tc.base, got, tc.want)
			}
		})
	}
}

func TestStartRespectsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	if f := Start(64 * mib); f != nil {
		f.Stop()
		t.Fatal("Start installed a floor although GOGC is set")
	}
	t.Setenv("GOGC", "")
	if f := Start(0); f != nil {
		f.Stop()
		t.Fatal("Start(0) installed a floor")
	}
}

// sink keeps allocations on the heap.
var sink []byte

// churn allocates total bytes of garbage in 32 KiB pieces and returns how
// many collections ran meanwhile.
func churn(total int) uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for range total / (32 << 10) {
		sink = make([]byte, 32<<10)
	}
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

func TestFloorCutsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	runtime.GC()
	without := churn(512 * mib)

	f := Start(64 * mib)
	if f == nil {
		t.Fatal("Start returned no floor")
	}
	runtime.GC() // one cycle so the cleanup adjusts to the live heap
	with := churn(512 * mib)
	// The floor adjusts in a cleanup after each collection, which may not
	// have run yet for the last one: collect until the goal reflects the
	// live heap the collection left (bounded, not timed).
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // let the cleanup run
		if metrics.Read(goal); goal[0].Value.Uint64() >= 48*mib && goal[0].Value.Uint64() <= 80*mib {
			break
		}
	}
	pct := f.Current()
	f.Stop()
	after := debug.SetGCPercent(100)
	debug.SetGCPercent(after)

	t.Logf("collections for 512 MiB of garbage: %d without the floor, %d with it; percent %d, heap goal %d MiB",
		without, with, pct, goal[0].Value.Uint64()/mib)
	if without < 16 {
		t.Fatalf("only %d collections without a floor; the test's premise (a small live heap) does not hold", without)
	}
	if with*4 > without {
		t.Fatalf("the floor did not cut collections: %d with, %d without", with, without)
	}
	if g := goal[0].Value.Uint64(); g < 48*mib || g > 80*mib {
		t.Fatalf("heap goal %d MiB with a 64 MiB floor and a small live heap, want about 64", g/mib)
	}
	if after != 100 {
		t.Fatalf("Stop left GC percent %d, want the 100 it found", after)
	}
	if more := churn(64 * mib); more < 4 {
		t.Fatalf("after Stop only %d collections for 64 MiB of garbage: the floor is still on", more)
	}
}

// live keeps a large allocation reachable.
var live []byte

// settle runs collections until f's percentage satisfies ok (the cleanup
// that adjusts it runs after a collection, on the runtime's cleanup
// goroutine), at most 100 times.
func settle(f *Floor, ok func(int) bool) int {
	for range 100 {
		runtime.GC()
		runtime.Gosched()
		if p := f.Current(); ok(p) {
			return p
		}
	}
	return f.Current()
}

func TestFloorFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	f := Start(64 * mib)
	if f == nil {
		t.Fatal("Start returned no floor")
	}
	defer f.Stop()
	if p := settle(f, func(p int) bool { return p > 400 }); p <= 400 {
		t.Fatalf("small live heap: percent %d, want well above 100", p)
	}
	live = make([]byte, 48*mib)
	for i := range live { // touch it: it is live data, not just a reservation
		live[i] = 1
	}
	if p := settle(f, func(p int) bool { return p == 100 }); p != 100 {
		t.Fatalf("48 MiB live: percent %d, want the base 100 (2×live exceeds the floor)", p)
	}
	live = nil
	if p := settle(f, func(p int) bool { return p > 400 }); p <= 400 {
		t.Fatalf("live heap released: percent %d, want the floor back", p)
	}
}
