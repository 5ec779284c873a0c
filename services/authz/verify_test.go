package authz_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/golang-jwt/jwt/v5"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	before := time.Now().Truncate(time.Second)
	tok := e.mint(t, authz.DevClaims{Sub: "alice", Tenant: "acme", Plan: "pro", Groups: []string{"admins", "beta"}, TTL: time.Hour})
	resp, err := e.verify(t, bus.VerifyRequest{Token: tok})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	id := resp.Identity
	want := identity.Identity{
		Sub: "alice", Issuer: authz.DefaultDevIssuerURL, Tenant: "acme", Plan: "pro",
		Groups: []string{"admins", "beta"}, ChannelID: "alice", Kind: identity.KindUser,
	}
	got := id
	got.ExpiresAt = time.Time{}
	if !equalIdentity(got, want) {
		t.Fatalf("identity = %+v\nwant       %+v", got, want)
	}
	if d := id.ExpiresAt.Sub(before); d < time.Hour || d > time.Hour+2*time.Second {
		t.Fatalf("ExpiresAt %v is not about an hour after %v", id.ExpiresAt, before)
	}
	// The identity must travel in the Gh-Identity header unchanged.
	h, err := identity.Encode(id)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := identity.Decode(h); err != nil || back.ChannelID != "alice" {
		t.Fatalf("identity header round trip: %+v %v", back, err)
	}
	// A second verify (served from the cache) gives the same identity.
	again, err := e.verify(t, bus.VerifyRequest{Token: tok})
	if err != nil || !equalIdentity(again.Identity, id) {
		t.Fatalf("second verify = %+v, %v", again.Identity, err)
	}
}

func equalIdentity(a, b identity.Identity) bool {
	return a.Sub == b.Sub && a.Issuer == b.Issuer && a.Tenant == b.Tenant && a.Plan == b.Plan &&
		slices.Equal(a.Groups, b.Groups) && a.ChannelID == b.ChannelID && a.Kind == b.Kind &&
		a.KeyID == b.KeyID && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	key := devKey(t, e.dir)
	kid := e.dev.KeyID()
	now := time.Now()
	at := func(d time.Duration) (int64, string) {
		ts := now.Add(d).Truncate(time.Second)
		return ts.Unix(), ts.UTC().Format(time.RFC3339)
	}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := e.validClaims("alice")
		mod(c)
		return c
	}
	expUnix, expText := at(-time.Hour)
	nbfUnix, nbfText := at(time.Hour)

	// A valid token with its payload swapped for bob's: signature no longer fits.
	good := e.mint(t, authz.DevClaims{Sub: "alice"})
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(with(func(c jwt.MapClaims) { c["sub"] = "bob" }))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	// HS256 keyed with the public key, the classic algorithm-confusion attack.
	hs := sign(t, jwt.SigningMethodHS256, publicKeyPEM(t, &key.PublicKey), kid, e.validClaims("alice"))
	jwks, _ := e.dev.JWKS()
	hsJWKS := sign(t, jwt.SigningMethodHS256, jwks, kid, e.validClaims("alice"))

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		req  bus.VerifyRequest
		code int
		want string
	}{
		{"expired", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["exp"] = expUnix }))},
			401, "token expired at " + expText},
		{"not yet valid", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["nbf"] = nbfUnix }))},
			401, "token not valid before " + nbfText},
		{"issued in the future", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["iat"] = nbfUnix }))},
			401, "token not valid before " + nbfText + " (issued in the future)"},
		{"wrong issuer", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
			401, `token issuer "https://evil.example" is not trusted`},
		{"wrong audience", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["aud"] = []string{"other", "more"} }))},
			401, "token audience does not include gatehouse"},
		{"no audience", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
			401, "token audience does not include gatehouse"},
		{"tampered payload", bus.VerifyRequest{Token: tampered}, 401, "token signature is invalid"},
		{"alg none", bus.VerifyRequest{Token: rawToken(t, map[string]string{"alg": "none", "typ": "JWT", "kid": kid}, e.validClaims("alice"), "")},
			401, "token algorithm none is not allowed"},
		{"alg missing", bus.VerifyRequest{Token: rawToken(t, map[string]string{"typ": "JWT", "kid": kid}, e.validClaims("alice"), "c2ln")},
			401, "token algorithm is not given"},
		{"alg unknown", bus.VerifyRequest{Token: rawToken(t, map[string]string{"alg": "XX999", "kid": kid}, e.validClaims("alice"), "c2ln")},
			401, "token algorithm XX999 is not allowed"},
		{"HS256 with public key", bus.VerifyRequest{Token: hs}, 401, "token algorithm HS256 is not allowed"},
		{"HS256 with JWKS", bus.VerifyRequest{Token: hsJWKS}, 401, "token algorithm HS256 is not allowed"},
		{"other key same kid", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, other, kid, e.validClaims("alice"))},
			401, "token signature is invalid"},
		{"unknown kid", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, "nope", e.validClaims("alice"))},
			401, `token key id "nope" is not known`},
		{"no kid", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, "", e.validClaims("alice"))},
			401, "token has no key id (kid)"},
		{"missing sub", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
			401, "token has no sub"},
		{"missing exp", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
			401, "token has no expiry (exp)"},
		{"oversized sub", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("a", 300) }))},
			401, "token is malformed: claim sub is longer than 256 bytes"},
		{"wrong claim type", bus.VerifyRequest{Token: sign(t, jwt.SigningMethodES256, key, kid, with(func(c jwt.MapClaims) { c["tenant"] = 7 }))},
			401, "token is malformed: claim tenant is not a string"},
		{"garbage", bus.VerifyRequest{Token: "garbage"}, 401, "token is malformed: token contains an invalid number of segments"},
		{"garbage segments", bus.VerifyRequest{Token: "a.b.c"}, 401, "token is malformed: could not base64 decode header"},
		{"too long", bus.VerifyRequest{Token: strings.Repeat("a", 20000)}, 401, "token is malformed: longer than 16384 bytes"},
		{"no credential", bus.VerifyRequest{}, 401, "no credential given"},
		{"bearer only", bus.VerifyRequest{Token: "Bearer  "}, 401, "no credential given"},
		{"api key", bus.VerifyRequest{APIKey: "gh_abc"}, 401, "API keys are not enabled on this gateway"},
		{"both credentials", bus.VerifyRequest{Token: good, APIKey: "gh_abc"}, 400, "not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.verify(t, tc.req)
			serviceError(t, err, tc.code, tc.want)
		})
	}
}

func publicKeyPEM(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func thumbprint(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestVerifyMalformedRequest(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	msg, err := e.nc.Request(e.subj.AuthzVerify(), []byte(`{"token":`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != bus.CodeBadRequest {
		t.Fatalf("malformed JSON answered %q %q, want 400", code, msg.Header.Get("Nats-Service-Error"))
	}
}

func TestVerifyClaimMapping(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	key := devKey(t, e.dir)
	kid := e.dev.KeyID()
	alice := e.mint(t, authz.DevClaims{Sub: "alice"})
	with := func(sub string, extra map[string]any) string {
		c := e.validClaims(sub)
		for k, v := range extra {
			c[k] = v
		}
		return sign(t, jwt.SigningMethodES256, key, kid, c)
	}
	email := "Alice.Smith@example.com"
	derived := identity.ChannelIDFor(authz.DefaultDevIssuerURL, email)

	cases := []struct {
		name  string
		token string
		want  identity.Identity
	}{
		{"bearer prefix", "Bearer " + alice, identity.Identity{Sub: "alice", ChannelID: "alice"}},
		{"lowercase bearer and spaces", "  bearer  " + alice + " ", identity.Identity{Sub: "alice", ChannelID: "alice"}},
		{"plain claims", with("bob", map[string]any{"tenant": "acme", "plan": "pro", "groups": []string{"a", "b"}}),
			identity.Identity{Sub: "bob", ChannelID: "bob", Tenant: "acme", Plan: "pro", Groups: []string{"a", "b"}}},
		{"cognito claims", with("carol", map[string]any{"custom:tenant": "acme", "custom:plan": "free", "cognito:groups": []string{"admins"}}),
			identity.Identity{Sub: "carol", ChannelID: "carol", Tenant: "acme", Plan: "free", Groups: []string{"admins"}}},
		{"plain wins over cognito", with("dave", map[string]any{"tenant": "t1", "custom:tenant": "t2", "plan": "p1", "custom:plan": "p2", "groups": []string{"g1"}, "cognito:groups": []string{"g2"}}),
			identity.Identity{Sub: "dave", ChannelID: "dave", Tenant: "t1", Plan: "p1", Groups: []string{"g1"}}},
		{"single group as string", with("erin", map[string]any{"groups": "solo"}),
			identity.Identity{Sub: "erin", ChannelID: "erin", Groups: []string{"solo"}}},
		{"audience list", with("fay", map[string]any{"aud": []string{"other", "gatehouse"}}),
			identity.Identity{Sub: "fay", ChannelID: "fay"}},
		{"email sub gets a derived channel id", with(email, nil), identity.Identity{Sub: email, ChannelID: derived}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := e.verify(t, bus.VerifyRequest{Token: tc.token})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			got := resp.Identity
			want := tc.want
			want.Issuer, want.Kind, want.ExpiresAt = authz.DefaultDevIssuerURL, identity.KindUser, got.ExpiresAt
			if got.ExpiresAt.IsZero() || !equalIdentity(got, want) {
				t.Fatalf("identity = %+v\nwant       %+v", got, want)
			}
		})
	}

	// The derived id is a clean channel segment that the owner rule accepts.
	if !channel.ValidSegment(derived) || !strings.HasPrefix(derived, "u-") {
		t.Fatalf("derived channel id %q is not a u- segment", derived)
	}
	resp, err := e.verify(t, bus.VerifyRequest{Token: with(email, nil)})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := e.check(t, bus.CheckRequest{Identity: resp.Identity, Op: bus.OpPublish, Channel: "/Inbound-Messages/" + derived})
	if err != nil || !dec.Allow {
		t.Fatalf("owner publish with derived id: %+v %v", dec, err)
	}
}

func TestDevIssuerKeyPersisted(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := authz.LoadOrCreateDevIssuer(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, authz.DevIssuerKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, info.Mode().Perm())
	}
	b, err := authz.LoadOrCreateDevIssuer(dir, "https://example.com/dev", "aud2")
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() || b.Issuer() != "https://example.com/dev" || a.Issuer() != authz.DefaultDevIssuerURL {
		t.Fatalf("reload: kid %s vs %s, issuers %s %s", a.KeyID(), b.KeyID(), a.Issuer(), b.Issuer())
	}
	ja, _ := a.JWKS()
	jb, _ := b.JWKS()
	if string(ja) != string(jb) {
		t.Fatalf("JWKS differ after reload:\n%s\n%s", ja, jb)
	}

	// A token minted before a restart verifies after it.
	tok, err := a.Mint(authz.DevClaims{Sub: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, authz.Config{DataDir: dir})
	if e.dev.KeyID() != a.KeyID() {
		t.Fatal("service created a new key instead of reusing the stored one")
	}
	if _, err := e.verify(t, bus.VerifyRequest{Token: tok}); err != nil {
		t.Fatalf("verify after restart: %v", err)
	}
}

func TestDevIssuerConcurrentCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 8
	kids := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			d, err := authz.LoadOrCreateDevIssuer(dir, "", "")
			if err != nil {
				errs <- err
				return
			}
			kids <- d.KeyID()
		}()
	}
	first := ""
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case kid := <-kids:
			if first == "" {
				first = kid
			} else if kid != first {
				t.Fatalf("two keys created: %s and %s", first, kid)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d files, want only the key", len(entries))
	}
}

func TestDevIssuerJWKS(t *testing.T) {
	t.Parallel()
	d, err := authz.LoadOrCreateDevIssuer(t.TempDir(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := d.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	k := set.Keys[0]
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["d"] != "" {
		t.Fatalf("JWK %v", k)
	}
	// RFC 7638: SHA-256 of the required members in lexicographic order.
	canon, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{k["crv"], k["kty"], k["x"], k["y"]})
	if want := thumbprint(canon); k["kid"] != want || d.KeyID() != want {
		t.Fatalf("kid %s (KeyID %s), want thumbprint %s", k["kid"], d.KeyID(), want)
	}
	// The published key verifies a minted token.
	x, _ := base64.RawURLEncoding.DecodeString(k["x"])
	y, _ := base64.RawURLEncoding.DecodeString(k["y"])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := d.Mint(authz.DevClaims{Sub: "alice"})
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("gatehouse"))
	if err != nil || parsed.Header["kid"] != d.KeyID() {
		t.Fatalf("minted token does not verify with the JWKS key: %v", err)
	}
}

func TestDevIssuerRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := authz.LoadOrCreateDevIssuer(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]authz.DevClaims{
		"no sub":       {},
		"negative ttl": {Sub: "a", TTL: -time.Second},
		"huge ttl":     {Sub: "a", TTL: authz.MaxDevTokenTTL + time.Second},
		"empty group":  {Sub: "a", Groups: []string{""}},
	} {
		if _, err := d.Mint(c); err == nil || !errorsIs(err, authz.ErrInvalidClaims) {
			t.Errorf("%s: Mint = %v, want ErrInvalidClaims", name, err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, authz.DevIssuerKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := authz.LoadOrCreateDevIssuer(dir, "", ""); !errorsIs(err, authz.ErrDevIssuerKey) || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, authz.DevIssuerKeyFile), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := authz.LoadOrCreateDevIssuer(bad, "", ""); !errorsIs(err, authz.ErrDevIssuerKey) {
		t.Fatalf("garbage key accepted: %v", err)
	}
	if _, err := authz.LoadOrCreateDevIssuer(t.TempDir(), "not a url", ""); !errorsIs(err, authz.ErrDevIssuerKey) {
		t.Fatalf("bad issuer URL accepted: %v", err)
	}
}
