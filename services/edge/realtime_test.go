package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

func TestHandshakeAckAndKeepAlive(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.KeepAliveInterval = 20 * time.Millisecond })
	c := e.dial("alice")
	if got := c.ws.Subprotocol(); got != Subprotocol {
		t.Fatalf("subprotocol = %q, want %q", got, Subprotocol)
	}
	c.send(map[string]any{"type": "connection_init"})
	ack := c.next()
	if ack["type"] != "connection_ack" || ack["connectionTimeoutMs"] != float64(300000) {
		t.Fatalf("ack = %v", ack)
	}
	f, err := c.read()
	if err != nil || f["type"] != "ka" {
		t.Fatalf("want ka, got %v, %v", f, err)
	}
}

func TestCredentialSources(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	tests := []struct {
		name   string
		protos []string
		hdr    http.Header
	}{
		{"subprotocol unpadded", []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "Authorization": "alice"}, false)}, nil},
		{"subprotocol padded", []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "Authorization": "alice"}, true)}, nil},
		{"subprotocol bearer", []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "Authorization": "Bearer alice"}, false)}, nil},
		{"subprotocol api key", []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "x-api-key": "key-alice"}, false)}, nil},
		{"upgrade authorization header", []string{Subprotocol}, http.Header{"Authorization": {"Bearer alice"}}},
		{"upgrade api key header", []string{Subprotocol}, http.Header{"X-Api-Key": {"key-alice"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dialWith(tc.protos, tc.hdr)
			c.send(map[string]any{"type": "connection_init"})
			if f := c.next(); f["type"] != "connection_ack" {
				t.Fatalf("got %v", f)
			}
			// The identity is alice: her outbound channel is allowed.
			if f := c.subscribe("s1", "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
				t.Fatalf("subscribe: %v", f)
			}
		})
	}
}

func TestUnauthorizedConnect(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	tests := []struct {
		name, token, msg string
	}{
		{"bad token", "mallory", "invalid credentials"},
		{"no credentials", "", "no credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial(tc.token)
			c.send(map[string]any{"type": "connection_init"})
			f := c.next()
			if f["type"] != "connection_error" {
				t.Fatalf("want connection_error, got %v", f)
			}
			er := firstError(t, f)
			if er["errorType"] != "UnauthorizedException" || !strings.Contains(er["message"].(string), tc.msg) {
				t.Fatalf("error = %v", er)
			}
			if ce := c.closed(); ce.Code != websocket.StatusPolicyViolation {
				t.Fatalf("close = %v", ce)
			}
		})
	}
}

func TestNotWebSocket(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	resp, err := e.client.Get(e.svc.URL() + PathRealtime)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status = %d", resp.StatusCode)
	}
}

func TestMessagesBeforeInit(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.dial("alice")
	c.send(map[string]any{"type": "subscribe", "id": "s1", "channel": "/Outbound-Messages/alice"})
	f := c.next()
	if f["type"] != "error" || firstError(t, f)["errorType"] != "BadRequestException" {
		t.Fatalf("got %v", f)
	}
	c.send(map[string]any{"type": "connection_init"})
	if f := c.next(); f["type"] != "connection_ack" {
		t.Fatalf("got %v", f)
	}
}

func TestInitTimeout(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.InitTimeout = 50 * time.Millisecond })
	c := e.dial("alice")
	ce := c.closed()
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonInitTimeout {
		t.Fatalf("close = %v", ce)
	}
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	tests := []struct {
		name, raw, errType string
	}{
		{"not json", `{nope`, "BadRequestException"},
		{"no type", `{"id":"x"}`, "BadRequestException"},
		{"unknown type", `{"type":"start","id":"x"}`, "UnsupportedOperation"},
		{"second init", `{"type":"connection_init"}`, "BadRequestException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			f := c.next()
			if f["type"] != "error" || firstError(t, f)["errorType"] != tc.errType {
				t.Fatalf("got %v", f)
			}
		})
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.MaxSubscriptionsPerConn = 2 })
	c := e.connect("alice")
	if f := c.subscribe("ok-1", "/Outbound-Messages/alice"); f["type"] != "subscribe_success" || f["id"] != "ok-1" {
		t.Fatalf("got %v", f)
	}
	tests := []struct {
		name, id, channel, errType, msg string
	}{
		{"bad id", "no spaces", "/Outbound-Messages/alice", "BadRequestException", "subscription id"},
		{"empty id", "", "/Outbound-Messages/alice", "BadRequestException", "subscription id"},
		{"duplicate id", "ok-1", "/Outbound-Messages/alice", "BadRequestException", "already in use"},
		{"bad channel", "s2", "/Outbound-Messages/a.b", "BadRequestException", "invalid channel"},
		{"missing channel", "s2", "", "BadRequestException", "needs a channel"},
		{"denied", "s2", "/Outbound-Messages/bob", "UnauthorizedException", "not your channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := c.subscribe(tc.id, tc.channel)
			if f["type"] != "subscribe_error" {
				t.Fatalf("got %v", f)
			}
			er := firstError(t, f)
			if er["errorType"] != tc.errType || !strings.Contains(er["message"].(string), tc.msg) {
				t.Fatalf("error = %v", er)
			}
		})
	}
	// The limit of 2: one more succeeds, the third fails.
	if f := c.subscribe("ok-2", "open/x"); f["type"] != "subscribe_success" {
		t.Fatalf("got %v", f)
	}
	f := c.subscribe("ok-3", "/open/y")
	if f["type"] != "subscribe_error" || firstError(t, f)["errorType"] != "MaxSubscriptionsReachedError" {
		t.Fatalf("got %v", f)
	}
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	c.subscribe("s1", "/Outbound-Messages/alice")
	c.send(map[string]any{"type": "unsubscribe", "id": "s1"})
	if f := c.next(); f["type"] != "unsubscribe_success" || f["id"] != "s1" {
		t.Fatalf("got %v", f)
	}
	c.send(map[string]any{"type": "unsubscribe", "id": "s1"})
	if f := c.next(); f["type"] != "unsubscribe_error" || f["id"] != "s1" {
		t.Fatalf("got %v", f)
	}
	if n := e.svc.hub.NumSubscriptions(); n != 0 {
		t.Fatalf("hub holds %d subscriptions after unsubscribe", n)
	}
}

func TestDataDelivery(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	if f := c.subscribe("exact", "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
		t.Fatalf("got %v", f)
	}
	if f := c.subscribe("wild", "/Outbound-Messages/alice/*"); f["type"] != "subscribe_success" {
		t.Fatalf("got %v", f)
	}
	payload := `{"contentBlockDelta":{"delta":{"text":"hé \"quoted\" <b>"}},"seq":1}`
	if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", []byte(payload)); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 2 {
		f := c.next()
		if f["type"] != "data" {
			t.Fatalf("got %v", f)
		}
		ev, ok := f["event"].(string)
		if !ok || ev != payload {
			t.Fatalf("event = %#v, want the payload as a JSON string", f["event"])
		}
		got[f["id"].(string)]++
	}
	if got["exact"] != 1 || got["wild"] != 1 {
		t.Fatalf("deliveries = %v, want one per matching subscription", got)
	}
	// Below the channel only the wildcard matches.
	if err := e.nc.Publish("gh.ch.Outbound-Messages.alice.sub", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if f := c.next(); f["type"] != "data" || f["id"] != "wild" || f["event"] != `{"n":2}` {
		t.Fatalf("got %v", f)
	}
}

func TestRefcountedSubscriptions(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	a1, a2 := e.connect("alice"), e.connect("alice")
	// Measured after connecting: the first authz request adds nats.go's
	// shared reply-inbox subscription.
	before := e.edgeNC.NumSubscriptions()
	a1.subscribe("s", "/Outbound-Messages/alice")
	a2.subscribe("s", "/Outbound-Messages/alice")
	if got := e.edgeNC.NumSubscriptions() - before; got != 1 {
		t.Fatalf("NATS subscriptions for two sockets on one channel = %d, want 1", got)
	}
	if got := e.svc.hub.NumMembers("gh.ch.Outbound-Messages.alice"); got != 2 {
		t.Fatalf("local members = %d, want 2", got)
	}
	if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a1, a2} {
		if f := c.next(); f["type"] != "data" {
			t.Fatalf("got %v", f)
		}
	}
	a1.send(map[string]any{"type": "unsubscribe", "id": "s"})
	a1.next()
	if got := e.edgeNC.NumSubscriptions() - before; got != 1 {
		t.Fatalf("after one unsubscribe: %d NATS subscriptions, want 1", got)
	}
	_ = a2.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the last NATS subscription to go", func() bool { return e.edgeNC.NumSubscriptions() == before })
}

func TestPublishToInbound(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	events := []any{`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, `"{\"stringified\":true}"`}
	f := c.publish("p1", "/Inbound-Messages/alice", events...)
	if f["type"] != "publish_success" || f["id"] != "p1" {
		t.Fatalf("got %v", f)
	}
	succ := f["successful"].([]any)
	if len(succ) != 2 || len(f["failed"].([]any)) != 0 {
		t.Fatalf("got %v", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	stream, err := e.js.Stream(ctx, "INBOUND")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range succ {
		entry := s.(map[string]any)
		reqID := entry["identifier"].(string)
		if entry["index"] != float64(i) || !bus.ValidToken(reqID) {
			t.Fatalf("entry %d = %v", i, entry)
		}
		msg, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != "gh.ch.Inbound-Messages.alice" || string(msg.Data) != events[i] {
			t.Fatalf("stored %s %q, want %q", msg.Subject, msg.Data, events[i])
		}
		if msg.Header.Get(bus.HeaderRequestID) != reqID || msg.Header.Get(bus.HeaderMsgID) != reqID {
			t.Fatalf("headers %v, want request id %s", msg.Header, reqID)
		}
		id, err := identity.Decode(msg.Header.Get(bus.HeaderIdentity))
		if err != nil || id.Sub != "alice" || id.ChannelID != "alice" {
			t.Fatalf("identity %v, %v", id, err)
		}
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.MaxEventBytes = 64 })
	c := e.connect("alice")
	ok := `{"a":1}`
	tests := []struct {
		name, id, channel string
		events            []any
		errType, msg      string
	}{
		{"too many events", "p", "/Inbound-Messages/alice", []any{ok, ok, ok, ok, ok, ok}, "BadRequestException", "too many events: 6"},
		{"no events", "p", "/Inbound-Messages/alice", []any{}, "BadRequestException", "1 to 5 events"},
		{"too big", "p", "/Inbound-Messages/alice", []any{`"` + strings.Repeat("x", 80) + `"`}, "BadRequestException", "event 0 is too big"},
		{"object not string", "p", "/Inbound-Messages/alice", []any{map[string]any{"a": 1}}, "BadRequestException", "must be a JSON string"},
		{"string not json", "p", "/Inbound-Messages/alice", []any{ok, "hello"}, "BadRequestException", "event 1 is not valid JSON"},
		{"wildcard channel", "p", "/Inbound-Messages/*", []any{ok}, "BadRequestException", "wildcard"},
		{"bad id", "p p", "/Inbound-Messages/alice", []any{ok}, "BadRequestException", "publish id"},
		{"denied", "p", "/Inbound-Messages/bob", []any{ok}, "UnauthorizedException", "not your channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := c.publish(tc.id, tc.channel, tc.events...)
			if f["type"] != "publish_error" {
				t.Fatalf("got %v", f)
			}
			er := firstError(t, f)
			if er["errorType"] != tc.errType || !strings.Contains(er["message"].(string), tc.msg) {
				t.Fatalf("error = %v", er)
			}
		})
	}
}

func TestPublishPerFrameAuthorization(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	// A frame carrying bob's credentials acts as bob.
	c.send(map[string]any{"type": "publish", "id": "p", "channel": "/Inbound-Messages/bob", "events": []string{`{}`},
		"authorization": map[string]string{"Authorization": "bob", "host": "h"}})
	if f := c.next(); f["type"] != "publish_success" {
		t.Fatalf("got %v", f)
	}
	c.send(map[string]any{"type": "subscribe", "id": "s", "channel": "/Outbound-Messages/alice",
		"authorization": map[string]string{"Authorization": "mallory"}})
	f := c.next()
	if f["type"] != "subscribe_error" || firstError(t, f)["errorType"] != "UnauthorizedException" {
		t.Fatalf("got %v", f)
	}
}

func TestPublishOtherNamespace(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	sub, err := e.nc.SubscribeSync("gh.ch.open.room")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := e.connect("alice")
	if f := c.publish("p", "open/room", `{"hello":"room"}`); f["type"] != "publish_success" {
		t.Fatalf("got %v", f)
	}
	msg, err := sub.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != `{"hello":"room"}` || msg.Header.Get(bus.HeaderIdentity) == "" {
		t.Fatalf("got %q %v", msg.Data, msg.Header)
	}
}

func TestCancelOnClose(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cancels, err := e.nc.SubscribeSync("gh.chat.v1.cancel.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := e.connect("alice")
	f := c.publish("p", "/Inbound-Messages/alice", `{"x":1}`)
	reqID := f["successful"].([]any)[0].(map[string]any)["identifier"].(string)
	_ = c.ws.Close(websocket.StatusNormalClosure, "bye")
	msg, err := cancels.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "gh.chat.v1.cancel."+reqID {
		t.Fatalf("cancel subject %s, want request %s", msg.Subject, reqID)
	}
	if id, err := identity.Decode(msg.Header.Get(bus.HeaderIdentity)); err != nil || id.Sub != "alice" {
		t.Fatalf("cancel identity %v %v", id, err)
	}
}

func TestCancelOnUnsubscribe(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cancels, err := e.nc.SubscribeSync("gh.chat.v1.cancel.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := e.connect("alice")
	c.subscribe("out", "/Outbound-Messages/alice")
	f := c.publish("p", "/Inbound-Messages/alice", `{"x":1}`)
	reqID := f["successful"].([]any)[0].(map[string]any)["identifier"].(string)
	c.send(map[string]any{"type": "unsubscribe", "id": "out"})
	c.next()
	msg, err := cancels.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "gh.chat.v1.cancel."+reqID {
		t.Fatalf("cancel subject %s, want request %s", msg.Subject, reqID)
	}
}

func TestTokenExpiryClosesSocket(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("short")
	f := c.next()
	if f["type"] != "connection_error" || firstError(t, f)["message"] != reasonExpired {
		t.Fatalf("got %v", f)
	}
	if ce := c.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonExpired {
		t.Fatalf("close = %v", ce)
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) {
		c.SendQueueLen = 4
		c.WriteTimeout = 200 * time.Millisecond
	})
	slow, fast := e.connect("alice"), e.connect("alice")
	slow.subscribe("s", "/Outbound-Messages/alice")
	fast.subscribe("f", "/Outbound-Messages/alice")

	e.svc.mu.Lock()
	var conns []*conn
	for c := range e.svc.conns {
		conns = append(conns, c)
	}
	e.svc.mu.Unlock()

	// The slow client never reads again. Publish, in lockstep with the fast
	// client, until the slow one's socket buffers and queue are full and it
	// is dropped; the fast client must get every event meanwhile.
	payload := []byte(`{"blob":"` + strings.Repeat("x", 60<<10) + `"}`)
	const maxEvents = 3000 // far more than loopback socket buffers hold
	for i := 0; e.svc.hub.NumMembers("gh.ch.Outbound-Messages.alice") == 2; i++ {
		if i == maxEvents {
			t.Fatalf("slow socket still connected after %d events", i)
		}
		if err := e.nc.Publish("gh.ch.Outbound-Messages.alice", payload); err != nil {
			t.Fatal(err)
		}
		if f := fast.next(); f["type"] != "data" {
			t.Fatalf("fast client got %v", f)
		}
	}
	eventually(t, "the slow socket to be dropped", func() bool {
		return e.svc.hub.NumMembers("gh.ch.Outbound-Messages.alice") == 1
	})
	// Only the dropped socket's close reason is read: it was set before the
	// socket was unregistered (under e.svc.mu), while the fast socket is
	// still live and its fields are its own goroutines'.
	var reasons []string
	eventually(t, "the slow socket to be unregistered", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		reasons = reasons[:0]
		for _, c := range conns {
			if _, live := e.svc.conns[c]; !live {
				reasons = append(reasons, c.closeReason)
			}
		}
		return len(reasons) == 1
	})
	if reasons[0] != reasonSlowConsumer {
		t.Fatalf("close reason %q, want %q", reasons[0], reasonSlowConsumer)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	c.subscribe("s", "/Outbound-Messages/alice")
	e.stop()
	if ce := c.closed(); ce.Code != websocket.StatusGoingAway {
		t.Fatalf("close = %v", ce)
	}
	if n := e.svc.hub.NumSubscriptions(); n != 0 {
		t.Fatalf("%d subscriptions left after shutdown", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{HTTPClient: e.client}); err == nil {
		t.Fatal("dial succeeded after shutdown")
	}
}

func TestSubscribeIsLiveBeforeSuccess(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	c := e.connect("alice")
	// Publishing right after subscribe_success, from another connection,
	// must reach the subscriber: the interest was flushed to the server.
	for i := range 20 {
		id := "s" + string(rune('a'+i))
		ch := "/Outbound-Messages/alice/" + id
		if f := c.subscribe(id, ch); f["type"] != "subscribe_success" {
			t.Fatalf("got %v", f)
		}
		if err := e.nc.Publish("gh.ch.Outbound-Messages.alice."+id, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if f := c.next(); f["type"] != "data" || f["id"] != id {
			t.Fatalf("got %v", f)
		}
	}
}
