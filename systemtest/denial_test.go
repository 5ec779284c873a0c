package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// TestBobCannotReachAlice checks that another user is refused, with a clear
// error, every way of reaching alice's channels, and that nothing of
// alice's answer reaches him.
func TestBobCannotReachAlice(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devConfig(t, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bobToken := must(dev.Issuer().Mint(authz.DevClaims{Sub: "bob"}))
	bob := dialAppSync(ctx, t, dev.EdgeURL(), dev.CAFile(), bobToken)

	for _, ch := range []string{"/Outbound-Messages/alice", "/Outbound-Messages/*", "/Outbound-Messages/alice/*", "/Inbound-Messages/alice", "/Inbound-Messages/*", "/*", "/Outbound-Messages/alice.>"} {
		f := bob.subscribe(ctx, "s-"+strings.NewReplacer("/", "-", "*", "x", ".", "d", ">", "g").Replace(ch), ch)
		if f.Type != "subscribe_error" || len(f.Errors) == 0 || f.Errors[0].ErrorType == "" || f.Errors[0].Message == "" {
			t.Errorf("bob subscribe %s: want subscribe_error with a reason, got %+v", ch, f)
		}
	}
	for _, ch := range []string{"/Inbound-Messages/alice", "/Inbound-Messages/*", "/Outbound-Messages/bob", "/Outbound-Messages/alice"} {
		f := bob.publish(ctx, "p-1", ch, referenceRequest(t, "hi", "echo", "c1"))
		if f.Type != "publish_error" || len(f.Errors) == 0 || f.Errors[0].Message == "" {
			t.Errorf("bob publish %s: want publish_error with a reason, got %+v", ch, f)
		}
	}

	// Bob's own channels work, and alice's answer never reaches him.
	if f := bob.subscribe(ctx, "own", "/Outbound-Messages/bob"); f.Type != "subscribe_success" {
		t.Fatalf("bob own subscribe: %+v", f)
	}
	aliceToken := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	_, aliceReq := chatRoundTrip(ctx, t, dev.EdgeURL(), dev.CAFile(), aliceToken, "alice")
	f := bob.publish(ctx, "p-own", "/Inbound-Messages/bob", referenceRequest(t, "hello there", "echo", "c1"))
	if f.Type != "publish_success" {
		t.Fatalf("bob own publish: %+v", f)
	}
	events := collectAnswer(ctx, t, bob, "own")
	checkAnswer(t, events, f.Successful[0].Identifier, "hello there")
	for _, ev := range events {
		if ev.RequestID == aliceReq {
			t.Fatalf("bob received alice's event %+v", ev)
		}
	}
}

// TestUnauthenticatedConnectRefused checks that a bad token never gets a
// connection_ack.
func TestUnauthenticatedConnectRefused(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devConfig(t, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	for name, tok := range map[string]string{"garbage": "not-a-token", "tampered": good[:len(good)-4] + "AAAA", "empty": ""} {
		if _, err := tryDialAppSync(ctx, t, dev.EdgeURL(), dev.CAFile(), tok); err == nil {
			t.Errorf("%s token was accepted", name)
		}
	}
}
