package authz_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

var operator = identity.Identity{Sub: "cli:ops", Issuer: "gatehouse-cli", ChannelID: "gatehouse-cli", Kind: identity.KindService}

func (e *env) createKey(t testing.TB, req bus.KeyCreateRequest) bus.KeyCreateResponse {
	t.Helper()
	if req.Caller.Sub == "" {
		req.Caller = operator
	}
	resp, err := bus.Request[bus.KeyCreateResponse](context.Background(), e.nc, e.subj.AuthzKeysCreate(), req, nil)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return resp
}

func (e *env) listKeys(t testing.TB, owner string) []bus.APIKey {
	t.Helper()
	resp, err := bus.Request[bus.KeyListResponse](context.Background(), e.nc, e.subj.AuthzKeysList(), bus.KeyListRequest{Caller: operator, Owner: owner, IncludeRevoked: true}, nil)
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	return resp.Keys
}

// testDatabaseURL returns a Postgres URL with a schema of its own, dropped
// when the test ends; it skips without Postgres, or fails under CI=true.
func testDatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("GATEHOUSE_TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Postgres at %s is required under CI: %v", base, err)
		}
		t.Skipf("Postgres not reachable at %s (set GATEHOUSE_TEST_DATABASE_URL): %v", base, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "gh_authz_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func TestAPIKeysSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testAPIKeys(t, authz.Config{DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db"), KeyLastUsedFlush: 20 * time.Millisecond})
}

func TestAPIKeysPostgres(t *testing.T) {
	t.Parallel()
	testAPIKeys(t, authz.Config{DatabaseURL: testDatabaseURL(t), KeyLastUsedFlush: 20 * time.Millisecond})
}

// testAPIKeys covers the life of a key: create (only the hash is stored),
// verify, scopes in check, last use, revocation with its broadcast.
func testAPIKeys(t *testing.T, cfg authz.Config) {
	e := start(t, cfg)
	created := e.createKey(t, bus.KeyCreateRequest{Name: "ci bot", Owner: "alice", Tenant: "acme", Plan: "pro",
		Models: []string{"echo*"}, Namespaces: []string{bus.NamespaceInbound}, TTL: time.Hour})
	secret, key := created.Secret, created.Key
	if !strings.HasPrefix(secret, authz.APIKeyPrefix) || len(secret) < len(authz.APIKeyPrefix)+52 || !strings.Contains(secret, key.ID) {
		t.Fatalf("secret %q does not look like a Gatehouse key with id %s", secret, key.ID)
	}
	if key.Owner != "alice" || key.CreatedBy != operator.Sub || key.ExpiresAt.Sub(key.CreatedAt) != time.Hour {
		t.Fatalf("key = %+v", key)
	}

	resp, err := e.verify(t, bus.VerifyRequest{APIKey: secret})
	if err != nil {
		t.Fatalf("verify key: %v", err)
	}
	id := resp.Identity
	if id.Kind != identity.KindAPIKey || id.KeyID != key.ID || id.Sub != "alice" || id.ChannelID != "alice" || id.Tenant != "acme" || id.Plan != "pro" {
		t.Fatalf("identity = %+v", id)
	}
	// A key differing in the secret, or not shaped like a key, is refused.
	wrong := secret[:len(secret)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(secret, "a")]
	_, err = e.verify(t, bus.VerifyRequest{APIKey: wrong})
	serviceError(t, err, 401, "API key is not valid")
	_, err = e.verify(t, bus.VerifyRequest{APIKey: "gh_short"})
	serviceError(t, err, 401, "API key is malformed")
	_, err = e.verify(t, bus.VerifyRequest{APIKey: secret, Token: "x"})
	serviceError(t, err, 400, "not both")

	// Scopes: the key reaches only its namespaces and models.
	for _, tc := range []struct {
		req   any
		allow bool
		why   string
	}{
		{bus.CheckRequest{Identity: id, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, true, ""},
		{bus.CheckRequest{Identity: id, Op: bus.OpSubscribe, Channel: "/Outbound-Messages/alice"}, false, "namespace Outbound-Messages is outside the API key's scope"},
		{bus.CheckRequest{Identity: id, Op: bus.OpPublish, Channel: "/Inbound-Messages/bob"}, false, "belongs to bob"},
		{bus.ModelCheckRequest{Identity: id, Op: bus.OpInvoke, Model: "echo"}, true, ""},
		{bus.ModelCheckRequest{Identity: id, Op: bus.OpInvoke, Model: "gpt-4o"}, false, "model gpt-4o is outside the API key's scope"},
	} {
		got, err := e.check(t, tc.req)
		if err != nil || got.Allow != tc.allow || !strings.Contains(got.Reason, tc.why) {
			b, _ := json.Marshal(tc.req)
			t.Errorf("check %s = %+v, %v; want allow=%v reason containing %q", b, got, err, tc.allow, tc.why)
		}
	}

	// Last use shows in the list.
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys := e.listKeys(t, "alice")
		if len(keys) == 1 && !keys[0].LastUsedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last use never recorded: %+v", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Revocation: broadcast, then refused by verify and check.
	revs := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(e.subj.AuthzRevoked(), revs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	rev, err := bus.Request[bus.KeyRevokeResponse](context.Background(), e.nc, e.subj.AuthzKeysRevoke(), bus.KeyRevokeRequest{Caller: operator, ID: key.ID, Reason: "leaked"}, nil)
	if err != nil || rev.Key.RevokedAt.IsZero() {
		t.Fatalf("revoke = %+v, %v", rev, err)
	}
	select {
	case m := <-revs:
		var r bus.Revocation
		if err := json.Unmarshal(m.Data, &r); err != nil || r.KeyID != key.ID || r.Reason != "leaked" {
			t.Fatalf("broadcast %s: %v", m.Data, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no revocation broadcast")
	}
	_, err = e.verify(t, bus.VerifyRequest{APIKey: secret})
	serviceError(t, err, 401, "API key was revoked at")
	got, err := e.check(t, bus.CheckRequest{Identity: id, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"})
	if err != nil || got.Allow || !strings.Contains(got.Reason, "was revoked") {
		t.Fatalf("check after revoke = %+v, %v", got, err)
	}
	_, err = bus.Request[bus.KeyRevokeResponse](context.Background(), e.nc, e.subj.AuthzKeysRevoke(), bus.KeyRevokeRequest{Caller: operator, ID: "kaaaaaaaaaaaaaaaa"}, nil)
	serviceError(t, err, 404, "no API key")
}

// TestKeyManagementPermissions checks who may manage keys and that every
// field is validated with a specific error.
func TestKeyManagementPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := start(t, authz.Config{DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db")})
	admin := identity.Identity{Sub: "root", Issuer: "x", ChannelID: "root", Kind: identity.KindUser, Groups: []string{authz.DefaultAdminGroup}}
	user := identity.Identity{Sub: "bob", Issuer: "x", ChannelID: "bob", Kind: identity.KindUser}
	keyCaller := identity.Identity{Sub: "root", Issuer: "x", ChannelID: "root", Kind: identity.KindAPIKey, KeyID: "k1", Groups: []string{authz.DefaultAdminGroup}}
	for name, caller := range map[string]identity.Identity{"user": user, "api key": keyCaller, "anonymous": {}} {
		_, err := bus.Request[bus.KeyCreateResponse](context.Background(), e.nc, e.subj.AuthzKeysCreate(), bus.KeyCreateRequest{Caller: caller, Owner: "bob"}, nil)
		t.Run(name, func(t *testing.T) { serviceError(t, err, 403, "needs membership of group gatehouse-admins") })
	}
	if resp := e.createKey(t, bus.KeyCreateRequest{Caller: admin, Owner: "bob"}); resp.Key.CreatedBy != "root" {
		t.Fatalf("admin create = %+v", resp.Key)
	}
	for _, tc := range []struct {
		req  bus.KeyCreateRequest
		want string
	}{
		{bus.KeyCreateRequest{}, "owner is required"},
		{bus.KeyCreateRequest{Owner: strings.Repeat("o", 300)}, "owner is required, 1 to 256 bytes"},
		{bus.KeyCreateRequest{Owner: "a", Name: strings.Repeat("n", 200)}, "name is longer than 128 bytes"},
		{bus.KeyCreateRequest{Owner: "a", Namespaces: []string{"a.b"}}, `namespaces: "a.b" is not a channel namespace`},
		{bus.KeyCreateRequest{Owner: "a", Models: []string{"[bad"}}, "is not a valid glob"},
		{bus.KeyCreateRequest{Owner: "a", TTL: 100 * 365 * 24 * time.Hour}, "must be between 0 (no expiry) and"},
		{bus.KeyCreateRequest{Owner: "a", Groups: []string{"has space"}}, "without spaces"},
	} {
		tc.req.Caller = operator
		_, err := bus.Request[bus.KeyCreateResponse](context.Background(), e.nc, e.subj.AuthzKeysCreate(), tc.req, nil)
		serviceError(t, err, 400, tc.want)
	}
}

// TestKeysDisabledWithoutDatabase checks the refusal when no key store is
// configured.
func TestKeysDisabledWithoutDatabase(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	_, err := e.verify(t, bus.VerifyRequest{APIKey: "gh_anything"})
	serviceError(t, err, 401, "API keys are not enabled")
	_, err = bus.Request[bus.KeyCreateResponse](context.Background(), e.nc, e.subj.AuthzKeysCreate(), bus.KeyCreateRequest{Caller: operator, Owner: "a"}, nil)
	serviceError(t, err, 503, "API keys are not enabled")
}

// TestRevocationReachesEveryReplica runs two replicas on one database: both
// cache the key, and a revocation through either refuses it on both at once.
func TestRevocationReachesEveryReplica(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := natstest.Start(t)
	cfg := authz.Config{DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db")}
	e := startOn(t, srv, cfg)
	startOn(t, srv, cfg)
	created := e.createKey(t, bus.KeyCreateRequest{Owner: "alice"})
	for range 40 { // the queue group spreads these over both replicas
		if _, err := e.verify(t, bus.VerifyRequest{APIKey: created.Secret}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bus.Request[bus.KeyRevokeResponse](context.Background(), e.nc, e.subj.AuthzKeysRevoke(), bus.KeyRevokeRequest{Caller: operator, ID: created.Key.ID}, nil); err != nil {
		t.Fatal(err)
	}
	// The broadcast is asynchronous to the other replica; it must land well
	// within the key cache's 30 s, so poll briefly and then require refusals.
	deadline := time.Now().Add(5 * time.Second)
	refused := 0
	for refused < 40 {
		_, err := e.verify(t, bus.VerifyRequest{APIKey: created.Secret})
		switch {
		case err != nil:
			refused++
		case time.Now().After(deadline):
			t.Fatalf("a replica still accepts the revoked key after 5s")
		default:
			refused = 0
		}
	}
}
