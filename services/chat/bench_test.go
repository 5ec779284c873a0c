package chat_test

import (
	"strconv"
	"testing"

	"github.com/gatehouse-ai/gatehouse/services/chat"
)

// BenchmarkEchoPipeline measures one request end to end: INBOUND publish,
// pull, validation, cache lookup, reservation, an eight-chunk echo answer,
// settlement, the usage record and the cache store, until the final event
// arrives on the outbound subject.
func BenchmarkEchoPipeline(b *testing.B) {
	h := newHarness(b, chat.Config{}, contractOpts{})
	who := user("bench")
	sub := h.listen(h.subj.Outbound(who.ChannelID))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A distinct text each time so every request misses the cache.
		h.publish(who, "bench-"+strconv.Itoa(i), request("the quick brown fox jumps over lazy "+strconv.Itoa(i)), nil)
		answer(b, sub)
	}
}
