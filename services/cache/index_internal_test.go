package cache

import (
	"strings"
	"testing"
	"time"
)

func TestKeyIndex(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	x := newKeyIndex(time.Hour, 3)
	x.now = func() time.Time { return now }
	key := func(c string) string { return strings.Repeat(c, KeyLen) }

	if x.absent(key("a")) {
		t.Fatal("absent before the watch delivered every key: gets must read the bucket")
	}
	x.setReady()
	if !x.absent(key("a")) {
		t.Fatal("a key never put is not reported absent")
	}
	if !x.put(key("a"), now) || x.absent(key("a")) {
		t.Fatal("a put key is reported absent")
	}
	if x.absent("not-hex-at-all-not-hex-at-all") {
		t.Fatal("a key the index cannot read is reported absent")
	}
	now = now.Add(time.Hour + time.Second)
	if !x.absent(key("a")) {
		t.Fatal("a key put longer than the TTL ago is still reported present")
	}
	x.put(key("b"), now)
	x.remove(key("b"))
	if !x.absent(key("b")) {
		t.Fatal("a deleted key is still reported present")
	}
	// Full: "a" has expired and makes room; then three live keys fill it.
	for _, c := range []string{"b", "c", "d"} {
		if !x.put(key(c), now) {
			t.Fatalf("put %s refused with room left after dropping expired keys", c)
		}
	}
	if x.put(key("e"), now) {
		t.Fatal("a fourth live key was accepted by an index of three")
	}
	if !x.put(key("c"), now.Add(time.Second)) {
		t.Fatal("a key already held was refused when full")
	}
	x.reset()
	if x.absent(key("f")) || len(x.keys) != 0 {
		t.Fatal("reset left the index answering")
	}
}
