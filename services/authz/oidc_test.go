package authz_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/golang-jwt/jwt/v5"
)

// rsaKeys are generated once: RSA generation is slow under -race.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

// idp is a Cognito-shaped identity provider: OIDC discovery and a JWKS of
// RSA keys that the test can rotate, counting JWKS fetches.
type idp struct {
	srv     *httptest.Server
	issuer  string
	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	fetches atomic.Int64
}

func startIDP(t testing.TB) *idp {
	t.Helper()
	p := &idp{keys: map[string]*rsa.PublicKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /us-east-1_TestPool/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "jwks_uri": p.issuer + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /us-east-1_TestPool/.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range p.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + "/us-east-1_TestPool"
	return p
}

func (p *idp) publish(kid string, k *rsa.PublicKey) {
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

const cognitoClient = "4example0client0id"

// cognitoAccess returns the claims of a Cognito access token.
func (p *idp) cognitoAccess(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub, "iss": p.issuer, "client_id": cognitoClient, "origin_jti": "o-1",
		"event_id": "e-1", "token_use": "access", "scope": "aws.cognito.signin.user.admin",
		"auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "j-1",
		"username": sub, "cognito:groups": []string{"admins", "beta"},
	}
}

// cognitoID returns the claims of a Cognito ID token.
func (p *idp) cognitoID(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub, "iss": p.issuer, "aud": cognitoClient, "token_use": "id", "email_verified": true,
		"cognito:username": sub, "email": sub + "@example.com", "custom:tenant": "acme", "custom:plan": "pro",
		"auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "j-2",
		"cognito:groups": []string{"beta"},
	}
}

func mod(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims { f(c); return c }

// TestCognitoTokens is Done-when 2: valid Cognito access and ID tokens
// signed by a JWKS server are accepted, and every bad token is refused
// with its own reason.
func TestCognitoTokens(t *testing.T) {
	t.Parallel()
	keys := rsaKeys()
	p := startIDP(t)
	p.publish("k1", &keys[0].PublicKey)
	e := start(t, authz.Config{
		Issuers:        []authz.OIDCIssuer{{IssuerURL: p.issuer, Audiences: []string{cognitoClient}, Cognito: true}},
		JWKSMinRefresh: 50 * time.Millisecond,
	})
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, keys[0], "k1", c) }

	// Accepted: access and ID tokens, raw and with Bearer.
	resp, err := e.verify(t, bus.VerifyRequest{Token: rs(p.cognitoAccess("8f2a-user"))})
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	id := resp.Identity
	if id.Sub != "8f2a-user" || id.Issuer != p.issuer || id.ChannelID != "8f2a-user" || !id.InGroup("admins") || id.Kind != identity.KindUser {
		t.Fatalf("access token identity = %+v", id)
	}
	resp, err = e.verify(t, bus.VerifyRequest{Token: "Bearer " + rs(p.cognitoID("9b1c-user"))})
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if id := resp.Identity; id.Tenant != "acme" || id.Plan != "pro" || !id.InGroup("beta") || id.InGroup("admins") {
		t.Fatalf("ID token identity = %+v", id)
	}
	now := time.Now()
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Minute).Unix() })), "token expired at"},
		{"not yet valid", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), "token not valid before"},
		{"issued in the future", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Minute).Unix() })), "issued in the future"},
		{"wrong issuer", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["iss"] = p.srv.URL + "/us-east-1_Other" })), "is not trusted"},
		{"wrong client id", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["client_id"] = "other-client" })), `token client_id "other-client" is not accepted`},
		{"access without client id", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { delete(c, "client_id") })), "access token has no client_id"},
		{"wrong audience", rs(mod(p.cognitoID("u"), func(c jwt.MapClaims) { c["aud"] = "other-client" })), "ID token audience is not one of the accepted client ids"},
		{"wrong token_use", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { c["token_use"] = "refresh" })), `token_use "refresh" is not accepted`},
		{"no token_use", rs(mod(p.cognitoAccess("u"), func(c jwt.MapClaims) { delete(c, "token_use") })), "token has no token_use"},
		{"bad signature", sign(t, jwt.SigningMethodRS256, keys[1], "k1", p.cognitoAccess("u")), "token signature is invalid"},
		{"alg none", rawToken(t, map[string]string{"alg": "none", "kid": "k1"}, p.cognitoAccess("u"), ""), "token algorithm none is not allowed"},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, publicPEM(t, &keys[0].PublicKey), "k1", p.cognitoAccess("u")), "token algorithm HS256 is not allowed"},
	} {
		_, err := e.verify(t, bus.VerifyRequest{Token: tc.token})
		t.Run(tc.name, func(t *testing.T) { serviceError(t, err, 401, tc.want) })
	}

	// Within the clock skew, an expired token is still accepted.
	if _, err := e.verify(t, bus.VerifyRequest{Token: rs(mod(p.cognitoAccess("skew"), func(c jwt.MapClaims) { c["exp"] = now.Add(-5 * time.Second).Unix() }))}); err != nil {
		t.Fatalf("token expired 5s ago, inside the skew: %v", err)
	}

	// Unknown kid: refused; once the provider rotates the key in, accepted
	// (after at most JWKSMinRefresh).
	rotated := sign(t, jwt.SigningMethodRS256, keys[1], "k2", p.cognitoAccess("rotated"))
	_, err = e.verify(t, bus.VerifyRequest{Token: rotated})
	serviceError(t, err, 401, `token key id "k2" is not known`)
	p.publish("k2", &keys[1].PublicKey)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = e.verify(t, bus.VerifyRequest{Token: rotated})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated key never accepted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJWKSRefreshIsRateLimited checks that a flood of tokens with forged
// key ids costs at most one JWKS fetch per JWKSMinRefresh.
func TestJWKSRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	keys := rsaKeys()
	p := startIDP(t)
	p.publish("k1", &keys[0].PublicKey)
	e := start(t, authz.Config{
		Issuers:        []authz.OIDCIssuer{{IssuerURL: p.issuer, JWKSURL: p.issuer + "/.well-known/jwks.json", Audiences: []string{cognitoClient}, Cognito: true}},
		JWKSMinRefresh: time.Hour,
	})
	for i := range 50 {
		tok := sign(t, jwt.SigningMethodRS256, keys[0], "forged-"+string(rune('a'+i%26))+string(rune('a'+i/26)), p.cognitoAccess("u"))
		_, err := e.verify(t, bus.VerifyRequest{Token: tok})
		serviceError(t, err, 401, "is not known")
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("50 forged key ids caused %d JWKS fetches, want 1", n)
	}
	// The known key still verifies without another fetch.
	if _, err := e.verify(t, bus.VerifyRequest{Token: sign(t, jwt.SigningMethodRS256, keys[0], "k1", p.cognitoAccess("u"))}); err != nil {
		t.Fatal(err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}

// TestGenericOIDCIssuerClaimMapping checks a non-Cognito issuer (Keycloak
// style) with custom claim names and its own audience.
func TestGenericOIDCIssuerClaimMapping(t *testing.T) {
	t.Parallel()
	keys := rsaKeys()
	p := startIDP(t)
	p.publish("k1", &keys[0].PublicKey)
	e := start(t, authz.Config{Issuers: []authz.OIDCIssuer{{
		IssuerURL: p.issuer, Audiences: []string{"gatehouse-web"},
		TenantClaim: "org", PlanClaim: "tier", GroupsClaim: "roles",
	}}})
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.issuer, "sub": "kc-user", "aud": []string{"account", "gatehouse-web"}, "exp": now.Add(time.Hour).Unix(),
		"org": "initech", "tier": "team", "roles": []string{"editors"}, "tenant": "ignored"}
	resp, err := e.verify(t, bus.VerifyRequest{Token: sign(t, jwt.SigningMethodRS256, keys[0], "k1", claims)})
	if err != nil {
		t.Fatal(err)
	}
	if id := resp.Identity; id.Tenant != "initech" || id.Plan != "team" || !id.InGroup("editors") {
		t.Fatalf("identity = %+v", id)
	}
	claims["aud"] = "gatehouse"
	_, err = e.verify(t, bus.VerifyRequest{Token: sign(t, jwt.SigningMethodRS256, keys[0], "k1", claims)})
	serviceError(t, err, 401, "token audience does not include gatehouse-web")
	// Dev tokens keep working beside the external issuer.
	if _, err := e.verify(t, bus.VerifyRequest{Token: e.mint(t, authz.DevClaims{Sub: "alice"})}); err != nil {
		t.Fatalf("dev token: %v", err)
	}
}

func publicPEM(t testing.TB, k *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
