package authz

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/authz/internal/verifier"
)

// newTestService returns a service that is not running, for calling its
// internals directly.
func newTestService(tb testing.TB) *Service {
	tb.Helper()
	nc := natstest.Connect(tb, natstest.Start(tb))
	s, err := New(Config{DataDir: tb.TempDir(), Logger: slog.New(slog.DiscardHandler)}, nc)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestVerifyCacheNeverOutlivesToken(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	clk := &clock{t: time.Now()}
	s.now = clk.now
	tok, err := s.dev.Mint(DevClaims{Sub: "alice", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := s.verify(ctx, bus.VerifyRequest{Token: "Bearer " + tok})
	if err != nil {
		t.Fatal(err)
	}
	if s.cache.Len() != 1 {
		t.Fatalf("cache holds %d entries after a verify, want 1", s.cache.Len())
	}
	again, err := s.verify(ctx, bus.VerifyRequest{Token: tok})
	if err != nil || string(again.reply) != string(first.reply) {
		t.Fatalf("cached verify = %s, %v", again.reply, err)
	}
	// Past the token's expiry the cache must not answer; the verifier then
	// refuses (the clock skew is 30s, so go well past it).
	clk.add(2 * time.Minute)
	_, err = s.verify(ctx, bus.VerifyRequest{Token: tok})
	if !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("verify after expiry = %v, want ErrExpired", err)
	}
	// Refusals are not cached.
	if s.cache.Len() != 0 {
		t.Fatalf("cache holds %d entries, want 0", s.cache.Len())
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	s := newTestService(b)
	tok, _ := s.dev.Mint(DevClaims{Sub: "alice", Tenant: "acme", Groups: []string{"a"}})
	req := bus.VerifyRequest{Token: "Bearer " + tok}
	ctx := context.Background()
	if _, err := s.verify(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCold is a full verification: parse, ES256 signature
// check, claims and identity mapping (the cache is bypassed).
func BenchmarkVerifyCold(b *testing.B) {
	s := newTestService(b)
	tok, _ := s.dev.Mint(DevClaims{Sub: "alice", Tenant: "acme", Groups: []string{"a"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.tokens.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	p := DefaultPolicy()
	alice := identity.Identity{Sub: "alice", ChannelID: "alice", Kind: identity.KindUser, ExpiresAt: time.Now().Add(time.Hour)}
	now := time.Now()
	for _, bc := range []struct {
		name string
		req  bus.CheckRequest
	}{
		{"allow", bus.CheckRequest{Identity: alice, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}},
		{"deny", bus.CheckRequest{Identity: alice, Op: bus.OpSubscribe, Channel: "/Outbound-Messages/bob"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.decide(bc.req, now, DefaultClockSkew); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
