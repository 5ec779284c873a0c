package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.MaxConnections = 2 })
	a := e.connect("alice")
	e.connect("bob")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{HTTPClient: e.client, Subprotocols: []string{Subprotocol}})
	if err == nil {
		t.Fatal("a third socket was accepted with MaxConnections 2")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third upgrade: %v %+v", err, resp)
	}
	// A freed slot is usable again.
	_ = a.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the closed socket to be unregistered", func() bool { return e.svc.NumConnections() == 1 })
	e.connect("carol")
}

func TestMaxConnectionsPerIdentity(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.MaxConnectionsPerIdentity = 2 })
	first := e.connect("carol")
	e.connect("carol")

	third := e.dial("carol")
	third.send(map[string]any{"type": "connection_init"})
	f := third.next()
	if f["type"] != "connection_error" {
		t.Fatalf("third socket for carol: %v", f)
	}
	er := firstError(t, f)
	if er["errorType"] != "LimitExceededException" || er["errorCode"] != float64(429) {
		t.Fatalf("error %v, want LimitExceededException/429", er)
	}
	if ce := third.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonLimit {
		t.Fatalf("close = %v", ce)
	}
	// Others are unaffected, and carol gets her slot back when one closes.
	e.connect("bob")
	_ = first.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "carol's slot to be released", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		return e.svc.perIdent["sub\x00contract\x00carol"] == 1
	})
	e.connect("carol")
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	b := newTokenBucket(2, 5, t0)
	steps := []struct {
		after time.Duration
		n     int
		ok    bool
	}{
		{0, 5, true},                       // the full burst
		{0, 1, false},                      // empty
		{400 * time.Millisecond, 1, false}, // 0.8 tokens
		{100 * time.Millisecond, 1, true},  // 1.0 token
		{10 * time.Second, 5, true},        // refilled, capped at the burst
		{0, 1, false},
	}
	now := t0
	for i, s := range steps {
		now = now.Add(s.after)
		if got := b.take(s.n, now); got != s.ok {
			t.Fatalf("step %d: take(%d) = %v, want %v (tokens %.2f)", i, s.n, got, s.ok, b.tokens)
		}
	}
}

// publishRevocation broadcasts r as authz would.
func (e *env) publishRevocation(r bus.Revocation) {
	e.t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		e.t.Fatal(err)
	}
	before := e.svc.revocations.Load()
	if err := e.nc.Publish(bus.NewSubjects("").AuthzRevoked(), b); err != nil {
		e.t.Fatal(err)
	}
	eventually(e.t, "the edge to apply the revocation", func() bool { return e.svc.revocations.Load() > before })
}

// stillOpen checks the socket answers a round trip.
func stillOpen(t *testing.T, c *wsClient, what string) {
	t.Helper()
	c.send(map[string]any{"type": "unsubscribe", "id": "probe"})
	if f := c.next(); f["type"] != "unsubscribe_error" {
		t.Fatalf("%s: got %v", what, f)
	}
}

func TestRevocationClosesMatchingSockets(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	byKey := e.dialWith([]string{Subprotocol, headerProtocol(map[string]string{"host": "h", "x-api-key": "key-alice"}, false)}, nil)
	byKey.send(map[string]any{"type": "connection_init"})
	if f := byKey.next(); f["type"] != "connection_ack" {
		t.Fatalf("api key connect: %v", f)
	}
	byToken := e.connect("alice")
	bob := e.connect("bob")

	// A revoked API key closes only the sockets that used it.
	e.publishRevocation(bus.Revocation{KeyID: contractKeyID, Reason: "leaked", RevokedAt: time.Now()})
	f := byKey.next()
	if f["type"] != "connection_error" || firstError(t, f)["errorType"] != "UnauthorizedException" || firstError(t, f)["message"] != reasonRevoked {
		t.Fatalf("revoked key socket got %v", f)
	}
	if ce := byKey.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonRevoked {
		t.Fatalf("close = %v", ce)
	}
	stillOpen(t, byToken, "alice's token socket after her key was revoked")

	// Revoking a sub of another issuer matches nothing; of this issuer,
	// closes alice's socket and leaves bob's.
	e.publishRevocation(bus.Revocation{Sub: "alice", Issuer: "someone-else", RevokedAt: time.Now()})
	stillOpen(t, byToken, "alice after a revocation for another issuer")
	e.publishRevocation(bus.Revocation{Sub: "alice", Issuer: "contract", RevokedAt: time.Now()})
	if ce := byToken.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonRevoked {
		t.Fatalf("close = %v", ce)
	}
	stillOpen(t, bob, "bob after alice was revoked")

	// Malformed broadcasts change nothing.
	if err := e.nc.Publish(bus.NewSubjects("").AuthzRevoked(), []byte(`{"keyId":"x","sub":"bob"}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Publish(bus.NewSubjects("").AuthzRevoked(), []byte(`nope`)); err != nil {
		t.Fatal(err)
	}
	stillOpen(t, bob, "bob after malformed revocations")
}

func TestRevocationDropsCachedIdentitiesAndDecisions(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	// Count the verify and check requests the edge sends (a plain
	// subscription sees a copy of each).
	verifies, err := e.nc.SubscribeSync(bus.NewSubjects("").AuthzVerify())
	if err != nil {
		t.Fatal(err)
	}
	checks, err := e.nc.SubscribeSync(bus.NewSubjects("").AuthzCheck())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := e.connect("alice")
	count := func(s interface{ Pending() (int, int, error) }) int {
		n, _, err := s.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	asBob := func(id string) {
		c.send(withAuth(pub(id, "/Inbound-Messages/bob", `{}`), map[string]string{"Authorization": "bob"}))
		if got := c.next(); got["type"] != "publish_success" {
			t.Fatalf("publish as bob: %v", got)
		}
		// Every request the edge sent for this publish was routed before
		// its answer; a flush makes sure our copies have arrived.
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	asBob("p1")
	v1, c1 := count(verifies), count(checks)
	asBob("p2") // cached: no new verify, no new check
	if count(verifies) != v1 || count(checks) != c1 {
		t.Fatalf("second publish was not served from the cache: verifies %d->%d checks %d->%d", v1, count(verifies), c1, count(checks))
	}
	// A revocation for someone else still invalidates every cache: the
	// edge cannot know which cached credential it concerned.
	e.publishRevocation(bus.Revocation{KeyID: "unrelated", RevokedAt: time.Now()})
	stillOpen(t, c, "alice after an unrelated revocation")
	asBob("p3")
	if count(verifies) != v1+1 || count(checks) != c1+1 {
		t.Fatalf("after a revocation: verifies %d->%d checks %d->%d, want one more each", v1, count(verifies), c1, count(checks))
	}
}

func TestDisconnectRequest(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	a1, a2 := e.connect("alice"), e.connect("alice")
	bob := e.connect("bob")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := bus.Request[bus.DisconnectResponse](ctx, e.nc, bus.NewSubjects("").EdgeDisconnect(), bus.DisconnectRequest{Sub: "alice", Reason: "maintenance"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Closed != 2 || resp.Edge != e.svc.id {
		t.Fatalf("response %+v, want 2 closed by %s", resp, e.svc.id)
	}
	for _, c := range []*wsClient{a1, a2} {
		if ce := c.closed(); ce.Code != websocket.StatusGoingAway || ce.Reason != "maintenance" {
			t.Fatalf("close = %v", ce)
		}
	}
	stillOpen(t, bob, "bob")
	resp, err = bus.Request[bus.DisconnectResponse](ctx, e.nc, bus.NewSubjects("").EdgeDisconnect(), bus.DisconnectRequest{}, nil)
	if err != nil || resp.Closed != 0 {
		t.Fatalf("empty selector: %+v %v, want nothing closed", resp, err)
	}
	stillOpen(t, bob, "bob after an empty selector")
}
