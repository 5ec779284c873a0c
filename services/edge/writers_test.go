package edge

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFrameLengths checks the writer pool's own WebSocket framing against
// the websocket library's reader for each length encoding (7-bit, 16-bit
// and 64-bit) and across their boundaries.
func TestFrameLengths(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	c.ws.SetReadLimit(1 << 20)
	c.subscribe("s", "/Outbound-Messages/alice")
	// The data frame adds about 40 bytes around the event's JSON string.
	for _, n := range []int{0, 60, 80, 100, 65450, 65500, 65600, 300_000} {
		payload := `{"p":"` + strings.Repeat("x", n) + `"}`
		if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if f := c.next(); f["type"] != "data" || f["event"] != payload {
			t.Fatalf("size %d: got a %v frame with an event of %d bytes", n, f["type"], len(f["event"].(string)))
		}
	}
}

// TestDeliveryOrderUnderLoad checks that frames queued faster than they are
// written (so the writers batch them) reach every subscriber
// complete and in publish order.
func TestDeliveryOrderUnderLoad(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	var clients []*wsClient
	for i := range 20 {
		c := e.connect("alice")
		if f := c.subscribe("s"+strconv.Itoa(i), "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
			t.Fatalf("got %v", f)
		}
		clients = append(clients, c)
	}
	const events = 200 // below DefaultSendQueueLen: nobody is a slow consumer
	for k := range events {
		if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", []byte(`{"k":`+strconv.Itoa(k)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		for k := range events {
			f := c.next()
			var ev struct{ K int }
			if s, _ := f["event"].(string); f["type"] != "data" || json.Unmarshal([]byte(s), &ev) != nil || ev.K != k {
				t.Fatalf("client %d, event %d: got %v", i, k, f)
			}
		}
	}
}

// TestStalledPeersDoNotBlockOthers checks that peers which stop reading
// (more of them than the machine has cores, each with far more queued than
// its TCP buffers take, so its writes block) hold up only their own
// sockets: a reading subscriber of the same channel still gets every event
// while the stalled writes wait out a long WriteTimeout.
func TestStalledPeersDoNotBlockOthers(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.WriteTimeout = 10 * time.Minute })
	// 12: more than the cores here and more than a fixed pool of 8 writers
	// (which this test catches); 24 made the test CPU-bound under -race
	// next to the netpoll stress test, so the reader's reads timed out.
	const stalled = 12
	var peers []*wsClient
	for i := range stalled {
		c := e.connect("alice")
		if f := c.subscribe("s"+strconv.Itoa(i), "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
			t.Fatalf("got %v", f)
		}
		peers = append(peers, c) // never read again
	}
	t.Cleanup(func() {
		for _, c := range peers {
			_ = c.ws.CloseNow() // the reset ends their blocked writes at once
		}
	})
	reader := e.connect("alice")
	reader.ws.SetReadLimit(1 << 20)
	if f := reader.subscribe("r", "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
		t.Fatalf("got %v", f)
	}
	// 48 events of 200 KB: 9.6 MB queued per stalled socket, more than its
	// TCP buffers hold (4 MB send buffer at most here, and a receive buffer
	// that does not grow while nobody reads), fewer events than its queue.
	const events = 48
	pad := strings.Repeat("x", 200<<10)
	for k := range events {
		if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", []byte(`{"k":`+strconv.Itoa(k)+`,"pad":"`+pad+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for k := range events {
		f := reader.next() // fails after testTimeout if the stalled peers block delivery
		if s, _ := f["event"].(string); f["type"] != "data" || !strings.HasPrefix(s, `{"k":`+strconv.Itoa(k)+`,`) {
			t.Fatalf("event %d: got a %v frame", k, f["type"])
		}
	}
}
