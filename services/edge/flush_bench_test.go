package edge

import (
	"net"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// discardConn is a net.Conn that accepts every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkDeliverFlush measures a socket's share of fan-out: queueing a
// burst of data frames and writing them as one batch (the writer's flush),
// per frame.
func BenchmarkDeliverFlush(b *testing.B) {
	for _, burst := range []int{1, 32} {
		b.Run(map[int]string{1: "burst1", 32: "burst32"}[burst], func(b *testing.B) {
			s := &Service{cfg: Config{}.withDefaults()}
			s.metrics = newMetrics(func() float64 { return 0 })
			c := s.newConn(discardConn{}, nil, identity.Identity{}, credential{}, nil)
			w := &writerState{}
			event := []byte(`"{\"contentBlockDelta\":{\"delta\":{\"text\":\"hello\"}},\"seq\":1}"`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += burst {
				for range burst {
					c.queue.push(outFrame{kind: outData, id: "sub-1", b: event})
				}
				c.flush(w)
			}
		})
	}
}
