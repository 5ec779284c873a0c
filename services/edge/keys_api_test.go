package edge

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// startKeysStandIn answers the key management subjects the way authz's
// contract says: callers must be "alice" (the admin here); create echoes
// the request; revoke of "k404" is a 404. It records the last caller.
func startKeysStandIn(t *testing.T, e *env) *atomic.Value {
	t.Helper()
	subj := bus.NewSubjects("")
	svc, err := micro.AddService(e.nc, micro.Config{Name: "keys-standin", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	var lastCaller atomic.Value
	lastCaller.Store("")
	add := func(name, subject string, h func(micro.Request)) {
		if err := svc.AddEndpoint(name, micro.HandlerFunc(h), micro.WithEndpointSubject(subject)); err != nil {
			t.Fatal(err)
		}
	}
	add("create", subj.AuthzKeysCreate(), func(r micro.Request) {
		var req bus.KeyCreateRequest
		_ = json.Unmarshal(r.Data(), &req)
		lastCaller.Store(req.Caller.Sub)
		if req.Caller.Sub != "alice" {
			_ = r.Error(bus.CodeForbidden, "managing API keys needs membership of group admins", nil)
			return
		}
		bus.Respond(r, bus.KeyCreateResponse{Key: bus.APIKey{ID: "k1", Owner: req.Owner, Models: req.Models}, Secret: "gh_secret"})
	})
	add("list", subj.AuthzKeysList(), func(r micro.Request) {
		var req bus.KeyListRequest
		_ = json.Unmarshal(r.Data(), &req)
		lastCaller.Store(req.Caller.Sub)
		bus.Respond(r, bus.KeyListResponse{Keys: []bus.APIKey{{ID: "k1", Owner: req.Owner}}})
	})
	add("revoke", subj.AuthzKeysRevoke(), func(r micro.Request) {
		var req bus.KeyRevokeRequest
		_ = json.Unmarshal(r.Data(), &req)
		lastCaller.Store(req.Caller.Sub)
		if req.ID == "k404" {
			_ = r.Error(bus.CodeNotFound, "no API key k404", nil)
			return
		}
		bus.Respond(r, bus.KeyRevokeResponse{Key: bus.APIKey{ID: req.ID}})
	})
	add("jwks", subj.AuthzJWKS(), func(r micro.Request) {
		bus.Respond(r, bus.JWKSResponse{Issuer: "https://issuer.test/dev", JWKS: []byte(`{"keys":[{"kty":"EC","kid":"k"}]}`)})
	})
	return &lastCaller
}

func (e *env) keysCall(t *testing.T, method, path, token, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, e.svc.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode
}

func TestKeysAPIForwardsVerifiedCaller(t *testing.T) {
	e := startEnv(t, nil)
	caller := startKeysStandIn(t, e)
	type apiErr struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	var created bus.KeyCreateResponse
	if st := e.keysCall(t, http.MethodPost, PathKeys, "alice", `{"owner":"bob","models":["echo"],"ttl":"1h"}`, &created); st != http.StatusCreated || created.Secret != "gh_secret" || created.Key.Owner != "bob" || caller.Load() != "alice" {
		t.Fatalf("create: %d %+v caller %v", st, created, caller.Load())
	}
	var ae apiErr
	if st := e.keysCall(t, http.MethodPost, PathKeys, "bob", `{"owner":"bob"}`, &ae); st != http.StatusForbidden || ae.Error.Type != "UnauthorizedException" || !strings.Contains(ae.Error.Message, "group admins") || caller.Load() != "bob" {
		t.Fatalf("non-admin create: %d %+v", st, ae)
	}
	ae = apiErr{}
	if st := e.keysCall(t, http.MethodPost, PathKeys, "alice", `{"owner":"bob","extra":1}`, &ae); st != http.StatusBadRequest || !strings.Contains(ae.Error.Message, "unknown field") {
		t.Fatalf("unknown field: %d %+v", st, ae)
	}
	ae = apiErr{}
	if st := e.keysCall(t, http.MethodPost, PathKeys, "alice", `{"owner":"bob","ttl":"soon"}`, &ae); st != http.StatusBadRequest || !strings.Contains(ae.Error.Message, "ttl") {
		t.Fatalf("bad ttl: %d %+v", st, ae)
	}
	ae = apiErr{}
	if st := e.keysCall(t, http.MethodGet, PathKeys, "forged", "", &ae); st != http.StatusUnauthorized || ae.Error.Message == "" {
		t.Fatalf("bad token: %d %+v", st, ae)
	}
	var listed bus.KeyListResponse
	if st := e.keysCall(t, http.MethodGet, PathKeys+"?owner=carol", "alice", "", &listed); st != http.StatusOK || len(listed.Keys) != 1 || listed.Keys[0].Owner != "carol" {
		t.Fatalf("list: %d %+v", st, listed)
	}
	ae = apiErr{}
	if st := e.keysCall(t, http.MethodDelete, PathKeys+"/k404", "alice", "", &ae); st != http.StatusNotFound || ae.Error.Type != "NotFoundException" {
		t.Fatalf("revoke missing: %d %+v", st, ae)
	}
	var rev bus.KeyRevokeResponse
	if st := e.keysCall(t, http.MethodDelete, PathKeys+"/k7", "alice", "", &rev); st != http.StatusOK || rev.Key.ID != "k7" {
		t.Fatalf("revoke: %d %+v", st, rev)
	}
}

func TestWellKnownServesAuthzJWKS(t *testing.T) {
	e := startEnv(t, nil)
	startKeysStandIn(t, e)
	var disco map[string]any
	if st := e.keysCall(t, http.MethodGet, PathOIDCDiscovery, "", "", &disco); st != http.StatusOK || disco["issuer"] != "https://issuer.test/dev" || disco["jwks_uri"] != e.svc.URL()+PathJWKS {
		t.Fatalf("discovery: %d %+v", st, disco)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if st := e.keysCall(t, http.MethodGet, PathJWKS, "", "", &set); st != http.StatusOK || len(set.Keys) != 1 || set.Keys[0]["kid"] != "k" {
		t.Fatalf("jwks: %d %+v", st, set)
	}
}
