package authz_test

import (
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// BenchmarkVerifyOverNATS is the edge's view: one verify round trip of a
// cached token through a real NATS server.
func BenchmarkVerifyOverNATS(b *testing.B) {
	e := start(b, authz.Config{})
	tok := e.mint(b, authz.DevClaims{Sub: "alice"})
	req := bus.VerifyRequest{Token: tok}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verify(b, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckOverNATS is one check round trip through a real NATS server.
func BenchmarkCheckOverNATS(b *testing.B) {
	e := start(b, authz.Config{})
	req := bus.CheckRequest{Identity: user("alice"), Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.check(b, req); err != nil {
			b.Fatal(err)
		}
	}
}
