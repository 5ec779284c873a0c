package authz_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyJWKSColdToken is a Cognito-shaped RS256 access token that
// authz has not seen (a new token every iteration, so the verify cache
// misses): signature check against the cached JWKS, over NATS.
func BenchmarkVerifyJWKSColdToken(b *testing.B) {
	keys := rsaKeys()
	p := startIDP(b)
	p.publish("k1", &keys[0].PublicKey)
	e := start(b, authz.Config{Issuers: []authz.OIDCIssuer{{IssuerURL: p.issuer, Audiences: []string{cognitoClient}, Cognito: true}}})
	toks := make([]string, 0, 4096)
	for i := range cap(toks) {
		c := p.cognitoAccess("user")
		c["jti"] = i
		toks = append(toks, sign(b, jwt.SigningMethodRS256, keys[0], "k1", c))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := e.verify(b, bus.VerifyRequest{Token: toks[i%len(toks)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyJWKSFirstFetch is the very first token of an issuer: a
// fresh authz replica fetches discovery and the JWKS, then verifies.
func BenchmarkVerifyJWKSFirstFetch(b *testing.B) {
	keys := rsaKeys()
	p := startIDP(b)
	p.publish("k1", &keys[0].PublicKey)
	tok := sign(b, jwt.SigningMethodRS256, keys[0], "k1", p.cognitoAccess("user"))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e := start(b, authz.Config{HTTPClient: &http.Client{Timeout: 5 * time.Second},
			Issuers: []authz.OIDCIssuer{{IssuerURL: p.issuer, Audiences: []string{cognitoClient}, Cognito: true}}})
		b.StartTimer()
		if _, err := e.verify(b, bus.VerifyRequest{Token: tok}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAPIKey is an API key verify over NATS with its record
// cached (the steady state of a key in use).
func BenchmarkVerifyAPIKey(b *testing.B) {
	dir := b.TempDir()
	e := start(b, authz.Config{DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db")})
	k := e.createKey(b, bus.KeyCreateRequest{Owner: "alice", Namespaces: []string{bus.NamespaceInbound}})
	req := bus.VerifyRequest{APIKey: k.Secret}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verify(b, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckAPIKeyScoped is a check of a scoped API key identity.
func BenchmarkCheckAPIKeyScoped(b *testing.B) {
	dir := b.TempDir()
	e := start(b, authz.Config{DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db")})
	k := e.createKey(b, bus.KeyCreateRequest{Owner: "alice", Namespaces: []string{bus.NamespaceInbound}})
	resp, err := bus.Request[bus.VerifyResponse](context.Background(), e.nc, e.subj.AuthzVerify(), bus.VerifyRequest{APIKey: k.Secret}, nil)
	if err != nil || resp.Identity.Kind != identity.KindAPIKey {
		b.Fatal(err)
	}
	req := bus.CheckRequest{Identity: resp.Identity, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}
	b.ReportAllocs()
	for b.Loop() {
		if r, err := e.check(b, req); err != nil || !r.Allow {
			b.Fatal(r, err)
		}
	}
}
