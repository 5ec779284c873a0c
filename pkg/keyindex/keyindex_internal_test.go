package keyindex

import (
	"strings"
	"testing"
	"time"
)

func TestIndex(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	x := New(3)
	x.now = func() time.Time { return now }
	key := func(c string) string { return strings.Repeat(c, 64) }

	if x.Absent(key("a")) {
		t.Fatal("absent before the watch delivered every key: lookups must go to the bucket")
	}
	x.setReady(x.currentEpoch(), time.Hour)
	if !x.Absent(key("a")) {
		t.Fatal("a key never put is not reported absent")
	}
	if !x.Put(key("a"), now) || x.Absent(key("a")) {
		t.Fatal("a put key is reported absent")
	}
	if x.Absent("not-hex-at-all-not-hex-at-all") || x.Absent("abc") {
		t.Fatal("a key the index cannot read is reported absent")
	}
	now = now.Add(time.Hour + time.Second)
	if !x.Absent(key("a")) {
		t.Fatal("a key put longer than the TTL ago is still reported present")
	}
	x.Put(key("b"), now)
	x.remove(key("b"))
	if !x.Absent(key("b")) {
		t.Fatal("a deleted key is still reported present")
	}
	// Full: "a" has expired and makes room; then three live keys fill it.
	for _, c := range []string{"b", "c", "d"} {
		if !x.Put(key(c), now) {
			t.Fatalf("put %s refused with room left after dropping expired keys", c)
		}
	}
	if x.Put(key("e"), now) {
		t.Fatal("a fourth live key was accepted by an index of three")
	}
	if !x.Put(key("c"), now.Add(time.Second)) {
		t.Fatal("a key already held was refused when full")
	}
	x.reset()
	if x.Absent(key("f")) || x.Len() != 0 {
		t.Fatal("reset left the index answering")
	}
}

// TestNoTTL: in a bucket without a TTL, entries never expire.
func TestNoTTL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	x := New(10)
	x.now = func() time.Time { return now }
	x.setReady(x.currentEpoch(), 0)
	k := strings.Repeat("ab", 32)
	x.Put(k, now)
	now = now.Add(10 * 365 * 24 * time.Hour)
	if x.Absent(k) {
		t.Fatal("a key of a bucket without TTL expired in the index")
	}
}

// TestInvalidatedWatchNeverReady: a watch that began before an
// Invalidate cannot make the index answer, even if it completes after.
func TestInvalidatedWatchNeverReady(t *testing.T) {
	x := New(10)
	epoch := x.currentEpoch()
	x.Put(strings.Repeat("1", 64), time.Now())
	x.Invalidate()
	x.setReady(epoch, time.Hour)
	if x.Absent(strings.Repeat("2", 64)) {
		t.Fatal("an index invalidated during its watch answers")
	}
	if x.Len() != 0 {
		t.Fatalf("Invalidate kept %d keys", x.Len())
	}
}
