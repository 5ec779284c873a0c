package identity

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/channel"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	in := Identity{Sub: "alice", Issuer: "https://dev", Tenant: "acme", Groups: []string{"admins"}, Plan: "free",
		ChannelID: "alice", Kind: KindUser, ExpiresAt: time.Unix(1900000000, 0).UTC()}
	h, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(h)
	if err != nil {
		t.Fatal(err)
	}
	if out.Sub != in.Sub || out.Tenant != in.Tenant || !out.ExpiresAt.Equal(in.ExpiresAt) || !out.InGroup("admins") || out.InGroup("x") {
		t.Fatalf("round trip mismatch: %+v", out)
	}
	if out.Subject() != "acme/alice" {
		t.Fatalf("Subject = %q", out.Subject())
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "!!!", "e30", "eyJzdWIiOiJhIiwiY2lkIjoiYS5iIn0"} {
		if _, err := Decode(v); !errors.Is(err, ErrInvalidHeader) {
			t.Errorf("Decode(%q) = %v, want ErrInvalidHeader", v, err)
		}
	}
	if _, err := Encode(Identity{}); err == nil {
		t.Error("Encode accepted an empty identity")
	}
}

func TestChannelIDFor(t *testing.T) {
	t.Parallel()
	if got := ChannelIDFor("iss", "alice"); got != "alice" {
		t.Fatalf("got %q", got)
	}
	for _, sub := range []string{"alice@example.com", "a.b", "", "u-spoof", "4f1c-9e-", "x/y"} {
		got := ChannelIDFor("iss", sub)
		if !channel.ValidSegment(got) || got == sub {
			t.Errorf("ChannelIDFor(%q) = %q, not a derived valid segment", sub, got)
		}
		if got != ChannelIDFor("iss", sub) || got == ChannelIDFor("other", sub) {
			t.Errorf("ChannelIDFor(%q) not stable or not issuer-scoped", sub)
		}
	}
	if !(Identity{ExpiresAt: time.Now().Add(-time.Second)}).Expired(time.Now()) || (Identity{}).Expired(time.Now()) {
		t.Fatal("Expired wrong")
	}
}
