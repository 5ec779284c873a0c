package main

import (
	"strconv"
	"testing"
	"time"
)

func TestSentAt(t *testing.T) {
	t.Parallel()
	now := time.Now().UnixNano()
	frame := []byte(`{"type":"data","id":"s1","event":"{\"t\":` + strconv.FormatInt(now, 10) + `,\"pad\":\"xx\"}"}`)
	if got, ok := sentAt(frame); !ok || got != now {
		t.Fatalf("sentAt = %d, %v; want %d", got, ok, now)
	}
	if _, ok := sentAt([]byte(`{"type":"ka"}`)); ok {
		t.Fatal("a keep-alive has no timestamp")
	}
}
