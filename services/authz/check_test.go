package authz_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

func user(name string) identity.Identity {
	return identity.Identity{
		Sub: name, Issuer: authz.DefaultDevIssuerURL, ChannelID: name,
		Kind: identity.KindUser, ExpiresAt: time.Now().Add(time.Hour),
	}
}

// TestCheckMatrix runs every row for alice (against bob) and for bob
// (against alice): "{me}" and "{other}" in the channel are replaced.
func TestCheckMatrix(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	const (
		pub = bus.OpPublish
		sub = bus.OpSubscribe
	)
	rows := []struct {
		op, channel string
		allow       bool
		reason      string // substring of the denial reason, with {me}/{other}
	}{
		// Own channels: exactly the two the chat protocol needs.
		{pub, "/Inbound-Messages/{me}", true, ""},
		{sub, "/Outbound-Messages/{me}", true, ""},
		{sub, "/Outbound-Messages/{me}/*", true, ""},
		{sub, "/Outbound-Messages/{me}/sub/deeper", true, ""},
		{sub, "/Inbound-Messages/{me}", false, "subscribe /Inbound-Messages/{me} denied: only Gatehouse services may subscribe here (rule service)"},
		{pub, "/Outbound-Messages/{me}", false, "publish /Outbound-Messages/{me} denied: only Gatehouse services may publish here (rule service)"},
		{pub, "/Inbound-Messages/{me}/sub", true, ""},
		// Somebody else's channels.
		{pub, "/Inbound-Messages/{other}", false, "publish /Inbound-Messages/{other} denied: the channel belongs to {other}, not to the caller ({me}) (rule owner)"},
		{sub, "/Outbound-Messages/{other}", false, "the channel belongs to {other}, not to the caller ({me}) (rule owner); only Gatehouse services may subscribe here (rule service)"},
		{sub, "/Outbound-Messages/{other}/*", false, "the channel belongs to {other}"},
		{sub, "/Inbound-Messages/{other}", false, "only Gatehouse services may subscribe here"},
		{pub, "/Outbound-Messages/{other}", false, "only Gatehouse services may publish here"},
		// Wildcards.
		{sub, "/Outbound-Messages/*", false, "subscribe /Outbound-Messages/* denied: a wildcard would reach other callers' channels (rule owner)"},
		{sub, "/Inbound-Messages/*", false, "only Gatehouse services may subscribe here"},
		{pub, "/Inbound-Messages/*", false, "cannot publish to /Inbound-Messages/*: a publish goes to one exact channel, not a wildcard"},
		{pub, "/Inbound-Messages/{me}/*", false, "cannot publish to /Inbound-Messages/{me}/*"},
		{pub, "/Outbound-Messages/*", false, "cannot publish to /Outbound-Messages/*"},
		// No owner segment.
		{pub, "/Inbound-Messages", false, "the channel has no owner segment (rule owner)"},
		{sub, "/Outbound-Messages", false, "the channel has no owner segment (rule owner)"},
		// Namespaces that are not open.
		{pub, "/inbound-messages/{me}", false, "namespace inbound-messages is not open"},
		{sub, "/Other/{me}", false, "namespace Other is not open"},
		{sub, "/Other/*", false, "namespace Other is not open"},
		// Malformed and injection-shaped channels: the grammar error.
		{pub, "/Inbound-Messages/{me}.>", false, "only letters, digits and '-' are allowed"},
		{sub, "/Inbound-Messages/{me}.>", false, "only letters, digits and '-' are allowed"},
		{sub, "/Outbound-Messages/{me}/>", false, "only letters, digits and '-' are allowed"},
		{sub, "/Outbound-Messages/>", false, "only letters, digits and '-' are allowed"},
		{sub, "/Outbound-Messages/{me}*", false, "'*' is only allowed as the whole last segment"},
		{sub, "/Outbound-Messages/*/{me}", false, "'*' is only allowed as the whole last segment"},
		{pub, "gh.ch.Inbound-Messages.{me}", false, "only letters, digits and '-' are allowed"},
		{pub, "/Inbound-Messages/{me} x", false, "only letters, digits and '-' are allowed"},
		{pub, "/Inbound-Messages/{me}\n", false, "only letters, digits and '-' are allowed"},
		{pub, "/Inbound-Messages//{me}", false, "empty segment"},
		{pub, "/Inbound-Messages/-{me}", false, "must start and end with a letter or digit"},
		{pub, "/Inbound-Messages/" + strings.Repeat("a", 51), false, "longer than 50 characters"},
		{sub, "/a/b/c/d/e/f", false, "at most 5 segments"},
		{sub, "/*", false, "a wildcard needs at least one segment"},
		{pub, "", false, "a channel needs at least one segment"},
	}
	pairs := [][2]string{{"alice", "bob"}, {"bob", "alice"}}
	for _, p := range pairs {
		me, other := p[0], p[1]
		fill := strings.NewReplacer("{me}", me, "{other}", other).Replace
		for _, r := range rows {
			ch := fill(r.channel)
			t.Run(me+"/"+r.op+"/"+ch, func(t *testing.T) {
				t.Parallel()
				got, err := e.check(t, bus.CheckRequest{Identity: user(me), Op: r.op, Channel: ch})
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				if got.Allow != r.allow {
					t.Fatalf("allow = %v (%q), want %v", got.Allow, got.Reason, r.allow)
				}
				if !r.allow && !strings.Contains(got.Reason, fill(r.reason)) {
					t.Fatalf("reason %q does not contain %q", got.Reason, fill(r.reason))
				}
				if r.allow && got.Reason != "" {
					t.Fatalf("allowed with reason %q", got.Reason)
				}
			})
		}
	}
}

func TestCheckIdentities(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	service := identity.Identity{Sub: "chat", Issuer: "gatehouse", ChannelID: "chat", Kind: identity.KindService}
	expired := user("alice")
	expired.ExpiresAt = time.Now().Add(-time.Hour).Truncate(time.Second)
	justExpired := user("alice")
	justExpired.ExpiresAt = time.Now().Add(-time.Second) // within the 30s clock skew

	cases := []struct {
		name   string
		req    bus.CheckRequest
		allow  bool
		reason string
	}{
		{"service subscribes to all outbound", bus.CheckRequest{Identity: service, Op: bus.OpSubscribe, Channel: "/Outbound-Messages/*"}, true, ""},
		{"service publishes outbound", bus.CheckRequest{Identity: service, Op: bus.OpPublish, Channel: "/Outbound-Messages/alice"}, true, ""},
		{"service subscribes inbound", bus.CheckRequest{Identity: service, Op: bus.OpSubscribe, Channel: "/Inbound-Messages/*"}, true, ""},
		{"service never publishes to a wildcard", bus.CheckRequest{Identity: service, Op: bus.OpPublish, Channel: "/Outbound-Messages/*"}, false, "cannot publish to /Outbound-Messages/*"},
		{"service is not alice", bus.CheckRequest{Identity: service, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, false, "belongs to alice, not to the caller (chat)"},
		{"user claiming service channel id is still a user", bus.CheckRequest{Identity: user("chat"), Op: bus.OpSubscribe, Channel: "/Outbound-Messages/*"}, false, "a wildcard would reach other callers' channels"},
		{"expired identity", bus.CheckRequest{Identity: expired, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, false, "the caller's credential expired at " + expired.ExpiresAt.UTC().Format(time.RFC3339)},
		{"expiry within clock skew", bus.CheckRequest{Identity: justExpired, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, true, ""},
		{"no identity", bus.CheckRequest{Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, false, "the request carries no verified identity"},
		{"identity without channel id", bus.CheckRequest{Identity: identity.Identity{Sub: "x"}, Op: bus.OpPublish, Channel: "/Inbound-Messages/x"}, false, "rule owner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.check(t, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.Allow != tc.allow || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("got %+v, want allow=%v reason containing %q", got, tc.allow, tc.reason)
			}
		})
	}
}

func TestCheckBadRequests(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	for _, op := range []string{"", "Publish", "read", "delete"} {
		_, err := e.check(t, bus.CheckRequest{Identity: user("alice"), Op: op, Channel: "/Inbound-Messages/alice"})
		serviceError(t, err, 400, "op must be publish, subscribe or invoke")
	}
	msg, err := e.nc.Request(e.subj.AuthzCheck(), []byte(`{"op":`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != bus.CodeBadRequest {
		t.Fatalf("malformed JSON answered %q, want 400", code)
	}
}

func TestCheckCustomPolicy(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{Prefix: "test.gh", Policy: authz.Policy{Namespaces: map[string]authz.NamespacePolicy{
		"Rooms":  {Publish: []authz.Rule{authz.GroupRule("writers")}, Subscribe: []authz.Rule{authz.RuleAuthenticated}},
		"Users":  {Publish: []authz.Rule{authz.RuleOwner, authz.GroupRule("admins")}, Subscribe: []authz.Rule{authz.RuleOwner}},
		"Closed": {Subscribe: []authz.Rule{authz.RuleDeny}},
	}}})
	alice := user("alice")
	writer := user("wendy")
	writer.Groups = []string{"writers"}
	admin := user("ada")
	admin.Groups = []string{"staff", "admins"}

	cases := []struct {
		name   string
		id     identity.Identity
		op, ch string
		allow  bool
		reason string
	}{
		{"anyone subscribes to a room", alice, bus.OpSubscribe, "/Rooms/lobby", true, ""},
		{"anyone subscribes to all rooms", alice, bus.OpSubscribe, "/Rooms/*", true, ""},
		{"writer publishes to a room", writer, bus.OpPublish, "/Rooms/lobby", true, ""},
		{"non-writer refused", alice, bus.OpPublish, "/Rooms/lobby", false, "publish /Rooms/lobby denied: the caller is not in group writers (rule group:writers)"},
		{"admin publishes to others", admin, bus.OpPublish, "/Users/alice", true, ""},
		{"owner publishes to self", alice, bus.OpPublish, "/Users/alice", true, ""},
		{"user refused on others", alice, bus.OpPublish, "/Users/bob", false, "the channel belongs to bob, not to the caller (alice) (rule owner); the caller is not in group admins (rule group:admins)"},
		{"admin is not owner for subscribe", admin, bus.OpSubscribe, "/Users/alice", false, "rule owner"},
		{"deny rule", alice, bus.OpSubscribe, "/Closed/x", false, "subscribe /Closed/x denied: namespace Closed is closed to subscribe (rule deny)"},
		{"empty rule list", alice, bus.OpPublish, "/Closed/x", false, "publish /Closed/x denied: namespace Closed allows no publish"},
		{"default namespaces are not in a custom policy", alice, bus.OpPublish, "/Inbound-Messages/alice", false, "namespace Inbound-Messages is not open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.check(t, bus.CheckRequest{Identity: tc.id, Op: tc.op, Channel: tc.ch})
			if err != nil {
				t.Fatal(err)
			}
			if got.Allow != tc.allow || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("got %+v, want allow=%v reason containing %q", got, tc.allow, tc.reason)
			}
		})
	}
}
