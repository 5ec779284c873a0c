package netpoll_test

import (
	"testing"
)

// BenchmarkReadinessRoundTrip measures one readiness cycle: the peer writes
// a byte, onReady runs, the byte is read non-blocking, and the registration
// is re-armed.
func BenchmarkReadinessRoundTrip(b *testing.B) {
	p := newPoller(b)
	server, client := pair(b)
	if err := server.SetNonBlocking(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{}, 1)
	reg, err := p.Register(server, func() { ready <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Deregister()
	one, buf := []byte{'x'}, make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(one); err != nil {
			b.Fatal(err)
		}
		<-ready
		if n, err := server.Read(buf); n != 1 || err != nil {
			b.Fatalf("Read = %d, %v; want 1, nil", n, err)
		}
		if err := reg.Arm(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlockingReadRoundTrip is the baseline the poller competes with:
// the same cycle with a goroutine blocked in Read on the connection.
func BenchmarkBlockingReadRoundTrip(b *testing.B) {
	server, client := pair(b)
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 16)
		for {
			if _, err := server.Read(buf); err != nil {
				close(ready)
				return
			}
			ready <- struct{}{}
		}
	}()
	one := []byte{'x'}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(one); err != nil {
			b.Fatal(err)
		}
		<-ready
	}
	_ = client.Close()
	for range ready {
	}
}
