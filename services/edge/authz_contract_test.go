package edge

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// This file registers a tiny stand-in for authz that honours the contract
// in pkg/bus (gh.authz.v1.verify / check). The real authz lives in another
// module that the edge must not import; whole-system tests run against it.
//
// Tokens: "alice", "bob" and "carol" verify to themselves; "short" verifies to
// "shorty" with an identity expiring shortly; API key "key-alice" verifies to
// alice with key id [contractKeyID]. Anything else is a 401. Policy (owner rule): publish only to
// /Inbound-Messages/<own> (or /open/..., an open namespace), subscribe only
// to /Outbound-Messages/<own> or patterns below it (or /open/...).

// contractKeyID is the key id of API key "key-alice".
const contractKeyID = "key-1"

// shortTokenLifetime is the lifetime of the "short" token's identity.
const shortTokenLifetime = 300 * time.Millisecond

func startContractAuthz(t testing.TB, nc *nats.Conn, prefix string) {
	t.Helper()
	subj := bus.NewSubjects(prefix)
	svc, err := micro.AddService(nc, micro.Config{Name: "authz-contract", Version: "0.0.1", QueueGroup: bus.QueueAuthz})
	if err != nil {
		t.Fatalf("add contract authz: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })

	verify := func(req micro.Request) {
		var vr bus.VerifyRequest
		if err := json.Unmarshal(req.Data(), &vr); err != nil {
			_ = req.Error(bus.CodeBadRequest, "bad verify request", nil)
			return
		}
		tok := strings.TrimPrefix(vr.Token, "Bearer ")
		var sub, keyID string
		var exp time.Time
		kind := identity.KindUser
		switch {
		case tok == "alice" || tok == "bob" || tok == "carol":
			sub = tok
		case tok == "short":
			sub, exp = "shorty", time.Now().Add(shortTokenLifetime)
		case vr.APIKey == "key-alice":
			sub, keyID, kind = "alice", contractKeyID, identity.KindAPIKey
		default:
			_ = req.Error(bus.CodeUnauthorized, "invalid credentials", nil)
			return
		}
		bus.Respond(req, bus.VerifyResponse{Identity: identity.Identity{Sub: sub, Issuer: "contract", ChannelID: sub, Kind: kind, KeyID: keyID, ExpiresAt: exp}})
	}
	check := func(req micro.Request) {
		var cr bus.CheckRequest
		if err := json.Unmarshal(req.Data(), &cr); err != nil {
			_ = req.Error(bus.CodeBadRequest, "bad check request", nil)
			return
		}
		own := cr.Identity.ChannelID
		allow := strings.HasPrefix(cr.Channel, "/open/")
		switch cr.Op {
		case bus.OpPublish:
			allow = allow || cr.Channel == "/"+bus.NamespaceInbound+"/"+own
		case bus.OpSubscribe:
			base := "/" + bus.NamespaceOutbound + "/" + own
			allow = allow || cr.Channel == base || strings.HasPrefix(cr.Channel, base+"/")
		}
		if !allow {
			bus.Respond(req, bus.CheckResponse{Allow: false, Reason: "not your channel: " + cr.Channel})
			return
		}
		bus.Respond(req, bus.CheckResponse{Allow: true})
	}
	if err := svc.AddEndpoint("verify", micro.HandlerFunc(verify), micro.WithEndpointSubject(subj.AuthzVerify())); err != nil {
		t.Fatalf("add verify endpoint: %v", err)
	}
	if err := svc.AddEndpoint("check", micro.HandlerFunc(check), micro.WithEndpointSubject(subj.AuthzCheck())); err != nil {
		t.Fatalf("add check endpoint: %v", err)
	}
	// The endpoints' subscriptions must be known to the server before the
	// edge (on another connection) asks: otherwise an early request finds
	// no responders.
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush contract authz: %v", err)
	}
}
