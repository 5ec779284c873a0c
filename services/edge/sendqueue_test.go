package edge

import "testing"

func TestSendQueue(t *testing.T) {
	t.Parallel()
	q := newSendQueue(3)
	if q.frames != nil {
		t.Fatal("an empty queue allocated a buffer")
	}
	for i := range 3 {
		if !q.push(outFrame{id: string(rune('a' + i))}) {
			t.Fatalf("push %d refused below the limit", i)
		}
	}
	if q.push(outFrame{id: "x"}) {
		t.Fatal("push beyond the limit accepted")
	}
	if q.empty() {
		t.Fatal("empty() after pushes")
	}
	got := q.take(nil)
	if len(got) != 3 || got[0].id != "a" || got[2].id != "c" {
		t.Fatalf("take = %+v", got)
	}
	if !q.push(outFrame{id: "d"}) {
		t.Fatal("push refused after take")
	}
	clear(got)
	again := q.take(got)
	if len(again) != 1 || again[0].id != "d" {
		t.Fatalf("second take = %+v", again)
	}
	if !q.empty() {
		t.Fatal("not empty() after take")
	}
	big := make([]outFrame, 0, shrinkAbove+1)
	q.take(big)
	if q.frames != nil {
		t.Fatal("a spare above shrinkAbove was kept")
	}
}

func BenchmarkSendQueue(b *testing.B) {
	q := newSendQueue(256)
	f := outFrame{kind: outData, id: "s1", b: []byte(`"{}"`)}
	var batch []outFrame
	b.ReportAllocs()
	for b.Loop() {
		for range 16 {
			q.push(f)
		}
		batch = q.take(batch)
		clear(batch)
	}
}
