package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// principal is one caller of the denial matrix.
type principal struct {
	name string
	self string            // its own channel id
	auth map[string]string // credential headers ("" map: anonymous)
	// namespaces limits an API key; nil means the policy alone decides.
	namespaces []string
}

func (p principal) anonymous() bool { return len(p.auth) == 0 }

func (p principal) inScope(ns string) bool {
	return p.namespaces == nil || slices.Contains(p.namespaces, ns)
}

// mayPublish and maySubscribe are the default policy, stated independently
// of its implementation: publish only to /Inbound-Messages/<own>,
// subscribe only to /Outbound-Messages/<own> or below it, and an API key
// only inside its namespaces.
func (p principal) mayPublish(ch string) bool {
	ch = canonical(ch)
	return !p.anonymous() && ch == "/"+bus.NamespaceInbound+"/"+p.self && p.inScope(bus.NamespaceInbound)
}

func (p principal) maySubscribe(ch string) bool {
	ch = canonical(ch)
	own := "/" + bus.NamespaceOutbound + "/" + p.self
	return !p.anonymous() && (ch == own || ch == own+"/*" || ch == own+"/sub") && p.inScope(bus.NamespaceOutbound)
}

// canonical applies the grammar's tolerance of one leading and one
// trailing "/": "Outbound-Messages/alice/" is /Outbound-Messages/alice.
func canonical(ch string) string {
	if ch == "" {
		return ch
	}
	return "/" + strings.TrimSuffix(strings.TrimPrefix(ch, "/"), "/")
}

// channelsFor lists own, other, wildcard, malformed and injection-shaped
// channels from p's point of view.
func channelsFor(p principal, other string) []string {
	in, out := "/"+bus.NamespaceInbound, "/"+bus.NamespaceOutbound
	return []string{
		// own
		in + "/" + p.self, out + "/" + p.self, out + "/" + p.self + "/*", out + "/" + p.self + "/sub",
		// own, other spellings the grammar tolerates
		"Outbound-Messages/" + p.self, out + "/" + p.self + "/", in[1:] + "/" + p.self,
		// other's
		in + "/" + other, out + "/" + other, out + "/" + other + "/*",
		// wildcards and other namespaces
		in + "/*", out + "/*", "/*", "/Other-Namespace/" + p.self,
		// malformed
		"", "/", out + "/", out + "//" + p.self, "/a/b/c/d/e/f",
		out + "/" + strings.Repeat("x", 51), out + "/-" + p.self,
		// injection-shaped
		out + "/" + p.self + ".>", out + "/" + p.self + ".*", out + "/>", out + "/" + p.self + "/../" + other,
		out + "/" + p.self + "\x00" + other, out + "/" + p.self + " " + other, in + "/" + p.self + "%2F" + other,
		out + "/al*ce", "/" + bus.NamespaceOutbound + "." + other,
	}
}

// TestAuthzDenialMatrix is Done-when 1 over WebSocket connect, subscribe
// and publish, HTTP POST /event and POST /v1/chat/completions: users alice and bob (dev tokens),
// narrow API keys and an anonymous client, against own, other, wildcard,
// malformed and injection-shaped channels. Exactly what the policy allows
// succeeds; everything else is refused with a specific error.
func TestAuthzDenialMatrix(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devConfig(t, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	nc := busConn(t, dev)
	aliceTok := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	bobTok := must(dev.Issuer().Mint(authz.DevClaims{Sub: "bob"}))
	pubKey := createKey(ctx, t, nc, bus.KeyCreateRequest{Owner: "alice", Name: "publish only", Namespaces: []string{bus.NamespaceInbound}})
	subKey := createKey(ctx, t, nc, bus.KeyCreateRequest{Owner: "bob", Name: "subscribe only", Namespaces: []string{bus.NamespaceOutbound}})
	principals := []principal{
		{name: "alice", self: "alice", auth: map[string]string{"Authorization": aliceTok}},
		{name: "bob", self: "bob", auth: map[string]string{"Authorization": "Bearer " + bobTok}},
		{name: "alice-publish-key", self: "alice", auth: map[string]string{"x-api-key": pubKey.Secret}, namespaces: []string{bus.NamespaceInbound}},
		{name: "bob-subscribe-key", self: "bob", auth: map[string]string{"x-api-key": subKey.Secret}, namespaces: []string{bus.NamespaceOutbound}},
		{name: "anonymous", self: "anon"},
	}
	client := httpClientTrusting(t, dev.CAFile())
	reasons := map[string]bool{}
	for _, p := range principals {
		other := "bob"
		if p.self == "bob" {
			other = "alice"
		}
		c, err := dialAuth(ctx, t, dev.EdgeURL(), dev.CAFile(), p.auth)
		if p.anonymous() {
			if err == nil {
				t.Fatalf("anonymous connect was acknowledged")
			}
		} else if err != nil {
			t.Fatalf("%s connect: %v", p.name, err)
		}
		checkChatCompletions(ctx, t, client, dev.EdgeURL(), p)
		n := 0
		for _, ch := range channelsFor(p, other) {
			n++
			event := referenceRequest(t, "matrix", "echo", "m")
			if c != nil {
				id := fmt.Sprintf("s%d", n)
				f := c.op(ctx, "subscribe", id, ch, p.auth)
				if want := p.maySubscribe(ch); want != (f.Type == "subscribe_success") {
					t.Errorf("%s subscribe %q: got %s %+v, policy allows=%v", p.name, ch, f.Type, f.Errors, want)
				} else if !want && !specific(f.Errors) {
					t.Errorf("%s subscribe %q: refusal without a specific error: %+v", p.name, ch, f)
				} else if !want {
					reasons[f.Errors[0].Message] = true
				}
				if f.Type == "subscribe_success" {
					if u := c.op(ctx, "unsubscribe", id, "", nil); u.Type != "unsubscribe_success" {
						t.Errorf("%s unsubscribe %s: %+v", p.name, id, u)
					}
				}
				id = fmt.Sprintf("p%d", n)
				f = c.op(ctx, "publish", id, ch, p.auth, event)
				if want := p.mayPublish(ch); want != (f.Type == "publish_success") {
					t.Errorf("%s publish %q: got %s %+v, policy allows=%v", p.name, ch, f.Type, f.Errors, want)
				} else if !want && !specific(f.Errors) {
					t.Errorf("%s publish %q: refusal without a specific error: %+v", p.name, ch, f)
				}
			}
			hdr := map[string]string{}
			for k, v := range p.auth {
				hdr[k] = v
			}
			r := postEvent(ctx, t, client, dev.EdgeURL(), hdr, ch, event)
			if want := p.mayPublish(ch); want != (r.Status == http.StatusOK && len(r.Successful) == 1) {
				t.Errorf("%s POST /event %q: got HTTP %d %+v, policy allows=%v", p.name, ch, r.Status, r, want)
			} else if !want && (r.Status < 400 || !specific(r.Errors)) {
				t.Errorf("%s POST /event %q: refusal without a specific error: HTTP %d %+v", p.name, ch, r.Status, r)
			}
		}
	}
	// Refusals name their cause, and the causes differ.
	for _, want := range []string{"outside the API key's scope", "belongs to"} {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no subscribe refusal mentions %q; reasons: %v", want, reasons)
		}
	}
	if len(reasons) < 5 {
		t.Errorf("only %d distinct refusal reasons: %v", len(reasons), reasons)
	}
}

// checkChatCompletions is the matrix's OpenAI API column: a chat
// completion publishes to the caller's own inbound channel, so it is
// allowed exactly when publishing there is.
func checkChatCompletions(ctx context.Context, t *testing.T, client *http.Client, base string, p principal) {
	t.Helper()
	body := `{"model":"echo","messages":[{"role":"user","content":"matrix"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range p.auth {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []json.RawMessage              `json:"choices"`
		Error   struct{ Message, Type string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s chat completion: undecodable answer (%s): %v", p.name, resp.Status, err)
	}
	want := p.mayPublish("/" + bus.NamespaceInbound + "/" + p.self)
	switch {
	case want && (resp.StatusCode != http.StatusOK || len(out.Choices) == 0):
		t.Errorf("%s chat completion: %s %+v, policy allows it", p.name, resp.Status, out.Error)
	case !want && (resp.StatusCode < 400 || len(out.Error.Message) <= 10 || out.Error.Type == ""):
		t.Errorf("%s chat completion: %s %+v, want a specific refusal", p.name, resp.Status, out.Error)
	case !want && p.namespaces != nil && !strings.Contains(out.Error.Message, "outside the API key's scope"):
		t.Errorf("%s chat completion refused for the wrong reason: %s", p.name, out.Error.Message)
	}
}

func specific(errs []frameError) bool {
	return len(errs) > 0 && errs[0].ErrorType != "" && len(errs[0].Message) > 10
}
