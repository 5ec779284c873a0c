package systemtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// TestWellKnownDevIssuer checks that the edge serves the dev issuer's OIDC
// discovery and JWKS, and that a minted token verifies with the served key
// (so any OIDC library can trust Gatehouse as an issuer).
func TestWellKnownDevIssuer(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devConfig(t, ""))
	client := httpClientTrusting(t, dev.CAFile())
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, client, dev.EdgeURL()+"/.well-known/openid-configuration", &disco)
	if disco.Issuer != dev.Issuer().Issuer() || disco.JWKSURI != dev.EdgeURL()+"/.well-known/jwks.json" {
		t.Fatalf("discovery = %+v", disco)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg string } `json:"keys"`
	}
	getJSON(t, client, disco.JWKSURI, &set)
	if len(set.Keys) != 1 || set.Keys[0].Kid != dev.Issuer().KeyID() || set.Keys[0].Alg != "ES256" || set.Keys[0].Crv != "P-256" {
		t.Fatalf("jwks = %+v", set)
	}
	k := set.Keys[0]
	x, _ := base64.RawURLEncoding.DecodeString(k.X)
	y, _ := base64.RawURLEncoding.DecodeString(k.Y)
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	tok := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("a minted token does not verify with the served JWKS")
	}
}

func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// keysCall calls the admin API and decodes its JSON answer into v.
func keysCall(ctx context.Context, t *testing.T, client *http.Client, method, url, token, body string, v any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: undecodable answer (%s): %v", method, url, resp.Status, err)
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct{ Type, Message string } `json:"error"`
}

// TestKeysAdminHTTPAPISQLite checks /v1/keys on the edge against the real authz:
// admins (the configured group) create, list and revoke; everybody else is
// refused with a specific error.
func TestKeysAdminHTTPAPISQLite(t *testing.T) {
	t.Parallel()
	testKeysAdminHTTPAPI(t, "")
}

// TestKeysAdminHTTPAPIPostgres keeps the keys in Postgres, beside the
// meter's ledger tables in the same schema.
func TestKeysAdminHTTPAPIPostgres(t *testing.T) {
	t.Parallel()
	testKeysAdminHTTPAPI(t, postgresSchema(t))
}

func testKeysAdminHTTPAPI(t *testing.T, databaseURL string) {
	dev := startDev(t, devConfig(t, databaseURL))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := httpClientTrusting(t, dev.CAFile())
	base := dev.EdgeURL() + "/v1/keys"
	admin := must(dev.Issuer().Mint(authz.DevClaims{Sub: "root", Groups: []string{authz.DefaultAdminGroup}}))
	user := must(dev.Issuer().Mint(authz.DevClaims{Sub: "bob"}))

	var e apiError
	if st := keysCall(ctx, t, client, http.MethodPost, base, user, `{"owner":"bob"}`, &e); st != http.StatusForbidden || !strings.Contains(e.Error.Message, "gatehouse-admins") {
		t.Fatalf("non-admin create: %d %+v", st, e)
	}
	e = apiError{}
	if st := keysCall(ctx, t, client, http.MethodGet, base, "", "", &e); st != http.StatusUnauthorized || e.Error.Message == "" {
		t.Fatalf("anonymous list: %d %+v", st, e)
	}
	e = apiError{}
	if st := keysCall(ctx, t, client, http.MethodPost, base, admin, `{"owner":"bob","ttl":"forever"}`, &e); st != http.StatusBadRequest || !strings.Contains(e.Error.Message, "ttl") {
		t.Fatalf("bad ttl: %d %+v", st, e)
	}
	e = apiError{}
	if st := keysCall(ctx, t, client, http.MethodPost, base, admin, `{"owner":"bob","namespaces":["a.b"]}`, &e); st != http.StatusBadRequest || !strings.Contains(e.Error.Message, "not a channel namespace") {
		t.Fatalf("bad namespace: %d %+v", st, e)
	}

	var created bus.KeyCreateResponse
	if st := keysCall(ctx, t, client, http.MethodPost, base, admin, `{"owner":"bob","name":"ci","models":["echo"],"ttl":"24h"}`, &created); st != http.StatusCreated || !strings.HasPrefix(created.Secret, "gh_") {
		t.Fatalf("admin create: %d %+v", st, created)
	}
	// The key works for its owner.
	r := postEvent(ctx, t, client, dev.EdgeURL(), map[string]string{"x-api-key": created.Secret}, "/Inbound-Messages/bob", referenceRequest(t, "hi", "echo", "c1"))
	if r.Status != http.StatusOK {
		t.Fatalf("POST /event with the new key: %+v", r)
	}
	// An API key may not manage keys, even its own.
	e = apiError{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	req.Header.Set("x-api-key", created.Secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("API key listing keys: %d %+v", resp.StatusCode, e)
	}

	var listed bus.KeyListResponse
	if st := keysCall(ctx, t, client, http.MethodGet, base+"?owner=bob", admin, "", &listed); st != http.StatusOK || len(listed.Keys) != 1 || listed.Keys[0].ID != created.Key.ID {
		t.Fatalf("list: %d %+v", st, listed)
	}
	var revoked bus.KeyRevokeResponse
	if st := keysCall(ctx, t, client, http.MethodDelete, base+"/"+created.Key.ID+"?reason=rotated", admin, "", &revoked); st != http.StatusOK || revoked.Key.RevokedAt.IsZero() {
		t.Fatalf("revoke: %d %+v", st, revoked)
	}
	e = apiError{}
	if st := keysCall(ctx, t, client, http.MethodDelete, base+"/knotakey", admin, "", &e); st != http.StatusBadRequest || !strings.Contains(e.Error.Message, "not an API key id") {
		t.Fatalf("revoke bad id: %d %+v", st, e)
	}
	r = postEvent(ctx, t, client, dev.EdgeURL(), map[string]string{"x-api-key": created.Secret}, "/Inbound-Messages/bob", referenceRequest(t, "hi", "echo", "c1"))
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("POST /event with the revoked key: %+v", r)
	}
}
