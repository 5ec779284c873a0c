package quota

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func sampleState() state {
	return state{
		Rolling: []bucket{{Start: 1_776_000_000, A: amount{1, 2, 3, 5, 7}}, {Start: 1_776_000_600, A: amount{Total: 1 << 40}}},
		Day:     period{Start: 1_775_952_000, A: amount{Requests: 2, Spend: -1}},
		Month:   period{Start: 1_775_001_600, A: amount{Input: 9}},
		Minute:  period{Start: 1_776_000_660},
		Res: []reservation{
			{ID: idHash("a"), Expires: 1_776_000_700_000_000_000, A: amount{1, 100, 500, 600, 900}},
			{ID: idHash("b"), Expires: 1, Skip: true},
		},
		Settled: []uint64{idHash("x"), idHash("y"), 0, ^uint64(0)},
	}
}

// TestStateCodec: every field survives encoding, and the empty state too.
func TestStateCodec(t *testing.T) {
	for _, s := range []state{{}, sampleState()} {
		data := appendState(nil, &s)
		got, err := decodeState(data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
		}
	}
}

// TestStateCodecLegacyJSON: a value written by an earlier version (JSON,
// request ids in clear) is read, with its ids hashed.
func TestStateCodecLegacyJSON(t *testing.T) {
	legacy := `{"b":[{"s":100,"a":{"t":5}}],"d":{"s":50,"a":{"r":1}},"m":{"s":10,"a":{}},"n":{"s":60,"a":{}},` +
		`"res":[{"id":"req-1","x":999,"a":{"r":1,"t":600},"k":true}],"st":["req-0"]}`
	got, err := decodeState([]byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	want := state{
		Rolling: []bucket{{Start: 100, A: amount{Total: 5}}},
		Day:     period{Start: 50, A: amount{Requests: 1}}, Month: period{Start: 10}, Minute: period{Start: 60},
		Res:     []reservation{{ID: idHash("req-1"), Expires: 999, A: amount{Requests: 1, Total: 600}, Skip: true}},
		Settled: []uint64{idHash("req-0")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("legacy:\n got %+v\nwant %+v", got, want)
	}
}

// TestStateCodecCorrupt: every truncation, a trailing byte, an unknown
// format, a bad flag and a huge count are errors, never a panic.
func TestStateCodecCorrupt(t *testing.T) {
	s := sampleState()
	data := appendState(nil, &s)
	for n := range len(data) {
		if _, err := decodeState(data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
		}
	}
	if _, err := decodeState(append(append([]byte{}, data...), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	if _, err := decodeState([]byte{9, 0}); err == nil {
		t.Error("unknown format: no error")
	}
	if _, err := decodeState([]byte("{not json")); err == nil {
		t.Error("bad legacy JSON: no error")
	}
	empty := appendState(nil, &state{})
	huge := append(append([]byte{}, empty[:len(empty)-1]...), 0xff, 0xff, 0xff, 0xff, 0x0f) // settled count 2^32-1
	if _, err := decodeState(huge); err == nil {
		t.Error("huge count: no error")
	}
	flag := appendState(nil, &state{Res: []reservation{{ID: 1}}})
	flag[len(flag)-2] = 2 // the skip flag, before the settled count
	if _, err := decodeState(flag); err == nil {
		t.Error("skip flag 2: no error")
	}
}

// TestCorruptStoredState: a stored value that does not decode is reported
// as ErrCorruptState naming nothing else, and nothing is overwritten.
func TestCorruptStoredState(t *testing.T) {
	t.Parallel()
	cfg := Config{Plans: map[string]Plan{"p": {Day: Limits{Requests: 10}}}, Defaults: Assignment{User: "p"}}
	kv := bucketKV(t, natstest.Start(t))
	q, err := NewKV(cfg, kv, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	key := subjectKey(ScopeUser, alice.Issuer+"\x00"+alice.Sub)
	if _, err := kv.Put(context.Background(), key, []byte{stateFormat, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Windows(context.Background(), alice); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("Windows on a corrupt value: %v, want ErrCorruptState", err)
	}
	e, err := kv.Get(context.Background(), key)
	if err != nil || len(e.Value()) != 2 {
		t.Fatalf("corrupt value changed: %v %v", e, err)
	}
}

// TestLegacyStoredState: a subject stored as JSON by an earlier version
// keeps its usage and reservations, and a repeated settle of a request it
// remembers as settled does not count again.
func TestLegacyStoredState(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	cfg := Config{Plans: map[string]Plan{"p": {Day: Limits{TotalTokens: 1000}}}, Defaults: Assignment{User: "p"},
		Now: func() time.Time { return now }}
	kv := bucketKV(t, natstest.Start(t))
	q, err := NewKV(cfg, kv, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	day := now.Truncate(24 * time.Hour).Unix()
	legacy := `{"d":{"s":` + itoa(day) + `,"a":{"r":1,"t":300}},"m":{"s":0,"a":{}},"n":{"s":0,"a":{}},` +
		`"res":[{"id":"open","x":` + itoa(now.Add(time.Minute).UnixNano()) + `,"a":{"r":1,"t":200}}],"st":["done"]}`
	if _, err := kv.Put(context.Background(), subjectKey(ScopeUser, alice.Issuer+"\x00"+alice.Sub), []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if w := window(t, settle(t, q, "done", alice, 50, 50).Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != 500 {
		t.Errorf("after repeating a legacy settle: used %d, want 500 (300 + 200 reserved)", w.Used)
	}
	if w := window(t, settle(t, q, "open", alice, 10, 20).Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != 330 {
		t.Errorf("after settling a legacy reservation: used %d, want 330", w.Used)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestGroupCommitWindows: concurrent reservations of one subject in one
// process (written in shared batches) are each granted or refused on
// the state after the ones before them, and each sees its own
// reservation in its windows.
func TestGroupCommitWindows(t *testing.T) {
	t.Parallel()
	q, _ := newQuota(t, Config{Plans: map[string]Plan{"p": {Day: Limits{TotalTokens: 1000}}}, Defaults: Assignment{User: "p"}},
		time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC))
	const n = 40
	used := make(chan int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := reserve(t, q, fmt.Sprintf("g%d", i), alice, 50, 50)
			if r.Granted {
				used <- window(t, r.Windows, ScopeUser, WindowDay, MetricTotalTokens).Used
			} else if r.Refusal == nil || r.Refusal.Used != 1000 {
				t.Errorf("refusal %+v, want one at 1000 used", r.Refusal)
			}
		})
	}
	wg.Wait()
	close(used)
	var seen []int64
	for u := range used {
		seen = append(seen, u)
	}
	slices.Sort(seen)
	want := []int64{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}
	if !slices.Equal(seen, want) {
		t.Errorf("granted reservations saw used %v, want %v", seen, want)
	}
}

// TestPlanWithoutLimitsWritesNothing: a scope on a plan that sets no
// limit keeps no state; the other scopes are still enforced.
func TestPlanWithoutLimitsWritesNothing(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Plans:    map[string]Plan{"free": {CountCached: true}, "p": {Day: Limits{Requests: 1}}},
		Defaults: Assignment{User: "p", Tenant: "free"},
	}
	kv := bucketKV(t, natstest.Start(t))
	q, err := NewKV(cfg, kv, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r := reserve(t, q, "a", alice, 1, 1)
	if !r.Granted {
		t.Fatalf("first request refused: %+v", r.Refusal)
	}
	for _, w := range r.Windows {
		if w.Scope != ScopeUser {
			t.Errorf("window of scope %s, want only user windows: %+v", w.Scope, w)
		}
	}
	if r := reserve(t, q, "b", alice, 1, 1); r.Granted || r.Refusal.Scope != ScopeUser {
		t.Errorf("second request: %+v, want refused by the user plan", r)
	}
	if _, err := kv.Get(context.Background(), subjectKey(ScopeTenant, alice.Tenant)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("tenant key on a plan without limits: %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Get(context.Background(), subjectKey(ScopeUser, alice.Issuer+"\x00"+alice.Sub)); err != nil {
		t.Errorf("user key: %v", err)
	}
}

// TestStaleCacheRefusalRechecked: a replica whose cached state would
// refuse, while another replica has freed room, grants on the fresh read
// and says so (the refusal decided on the cache does not leak out).
func TestStaleCacheRefusalRechecked(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	cfg := Config{Plans: map[string]Plan{"p": {Day: Limits{TotalTokens: 1000}}}, Defaults: Assignment{User: "p"}}
	var a, b *KV
	for _, q := range []**KV{&a, &b} {
		var err error
		if *q, err = NewKV(cfg, bucketKV(t, srv), nil, quiet); err != nil {
			t.Fatal(err)
		}
	}
	if r := reserve(t, a, "r1", alice, 100, 900); !r.Granted {
		t.Fatalf("r1 refused: %+v", r.Refusal)
	}
	settle(t, b, "r1", alice, 100, 100) // 200 used; a still caches 1000
	r := reserve(t, a, "r2", alice, 100, 400)
	if !r.Granted {
		t.Fatalf("r2 refused on a stale cache: %+v", r.Refusal)
	}
	if w := window(t, r.Windows, ScopeUser, WindowDay, MetricTotalTokens); w.Used != 700 {
		t.Errorf("used %d after r2, want 700", w.Used)
	}
}
