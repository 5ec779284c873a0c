package chat

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	r := newRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !r.register("a", "acme/alice", cancel, now) || r.register("a", "acme/alice", cancel, now) {
		t.Fatal("duplicate registration accepted")
	}
	if got := r.cancel("a", "acme/mallory", now); got != cancelNotOwner || ctx.Err() != nil {
		t.Fatalf("foreign cancel = %v, ctx %v", got, ctx.Err())
	}
	if got := r.cancel("a", "acme/alice", now); got != cancelApplied || ctx.Err() == nil {
		t.Fatalf("owner cancel = %v, ctx %v", got, ctx.Err())
	}
	r.unregister("a")

	// Early cancels apply to the same owner within the TTL only.
	cases := []struct {
		owner string
		delay time.Duration
		want  bool
	}{
		{"acme/bob", 0, true},
		{"acme/eve", 0, false},
		{"acme/bob", EarlyCancelTTL, false},
	}
	for i, tc := range cases {
		id := "early-" + strconv.Itoa(i)
		if got := r.cancel(id, "acme/bob", now); got != cancelRemembered {
			t.Fatalf("cancel before start = %v", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.register(id, tc.owner, cancel, now.Add(tc.delay))
		if (ctx.Err() != nil) != tc.want {
			t.Errorf("case %d: cancelled = %v, want %v", i, ctx.Err() != nil, tc.want)
		}
		cancel()
		r.unregister(id)
	}

	// The memory of early cancels is bounded; expired entries make room.
	for i := range MaxEarlyCancels {
		r.cancel("fill-"+strconv.Itoa(i), "x", now)
	}
	if got := r.cancel("one-more", "x", now); got != cancelDropped {
		t.Fatalf("cancel beyond the bound = %v", got)
	}
	if got := r.cancel("later", "x", now.Add(EarlyCancelTTL)); got != cancelRemembered || len(r.early) != 1 {
		t.Fatalf("after expiry = %v with %d remembered", got, len(r.early))
	}
}
