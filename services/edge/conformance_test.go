package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The conformance table: every client message type and every error path of
// the AppSync Events protocol as the edge speaks it (issue 4, DESIGN.md
// section 4). Each row opens its own socket on a shared edge and runs a
// script of exchanges; each exchange sends one thing and expects frames in
// order (keep-alives skipped).

// conformanceConfig is the edge configuration the table runs against:
// small limits so that every limit is reachable in a few frames.
func conformanceConfig(c *Config) {
	c.MaxSubscriptionsPerConn = 3
	c.PublishRate = 0.001 // effectively no refill during a test
	c.PublishBurst = 10
	c.MaxDeliverBytes = 64
}

// natsPub is an exchange that publishes data on subject through NATS (as
// chat does) instead of sending a frame.
type natsPub struct{ subject, data string }

// rawText is an exchange that sends its bytes as a text frame verbatim.
type rawText string

// binaryMsg is an exchange that sends a binary frame.
type binaryMsg []byte

// want is one expected server frame.
type want struct {
	typ       string
	id        string // "" = must be absent or empty
	errorType string // for frames with errors[0]
	msg       string // substring of errors[0].message
	check     func(t *testing.T, f frame)
}

type exchange struct {
	send  any // frame (marshalled), rawText, binaryMsg, natsPub, or nil to only read
	wants []want
	// anyOrder accepts wants in any order (frames from independent paths,
	// such as a publish_success and the data it caused).
	anyOrder bool
}

type conformanceRow struct {
	name   string
	protos []string    // nil: the aws-appsync-event-ws + header- subprotocol for token
	hdr    http.Header // upgrade headers
	token  string      // used when protos is nil
	noInit bool        // do not send connection_init before the script
	script []exchange
	// closeCode, when set, is the close code the server must end with.
	closeCode   websocket.StatusCode
	closeReason string
}

func sub(id, ch string) map[string]any {
	return map[string]any{"type": "subscribe", "id": id, "channel": ch}
}

func pub(id, ch string, events ...any) map[string]any {
	return map[string]any{"type": "publish", "id": id, "channel": ch, "events": events}
}

func withAuth(m map[string]any, auth map[string]string) map[string]any {
	m["authorization"] = auth
	return m
}

func ok(typ, id string) want { return want{typ: typ, id: id} }

func bad(typ, id, errorType, msg string) want {
	return want{typ: typ, id: id, errorType: errorType, msg: msg}
}

func data(id, event string) want {
	return want{typ: "data", id: id, check: func(t *testing.T, f frame) {
		ev, isString := f["event"].(string)
		if !isString {
			t.Fatalf("data event must be a JSON string, got %T %v", f["event"], f["event"])
		}
		if ev != event {
			t.Fatalf("data event %q, want %q", ev, event)
		}
	}}
}

func publishSuccess(id string, successful []int, failed int) want {
	return want{typ: "publish_success", id: id, check: func(t *testing.T, f frame) {
		s, _ := f["successful"].([]any)
		fl, isList := f["failed"].([]any)
		if !isList || len(fl) != failed || len(s) != len(successful) {
			t.Fatalf("publish_success %v: want %d successful, %d failed", f, len(successful), failed)
		}
		for i, idx := range successful {
			e := s[i].(map[string]any)
			if e["index"] != float64(idx) || e["identifier"] == "" {
				t.Fatalf("successful[%d] = %v, want index %d and an identifier", i, e, idx)
			}
		}
	}}
}

var conformanceRows = []conformanceRow{
	// Connection.
	{name: "connection_init is acknowledged with connectionTimeoutMs", noInit: true, token: "alice", script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{{typ: "connection_ack", check: func(t *testing.T, f frame) {
			if f["connectionTimeoutMs"] != float64(DefaultConnectionTimeout.Milliseconds()) {
				t.Fatalf("connectionTimeoutMs = %v", f["connectionTimeoutMs"])
			}
		}}}},
	}},
	{name: "header subprotocol padded", noInit: true, protos: []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "Authorization": "alice"}, true)}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "s1")}},
	}},
	{name: "header subprotocol with Bearer", noInit: true, protos: []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "Authorization": "Bearer alice"}, false)}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
	}},
	{name: "header subprotocol with x-api-key", noInit: true, protos: []string{Subprotocol, headerProtocol(map[string]string{"host": "h", "x-api-key": "key-alice"}, false)}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "s1")}},
	}},
	{name: "upgrade Authorization header", noInit: true, protos: []string{Subprotocol}, hdr: http.Header{"Authorization": {"alice"}}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
	}},
	{name: "upgrade x-api-key header", noInit: true, protos: []string{Subprotocol}, hdr: http.Header{"X-Api-Key": {"key-alice"}}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
	}},
	{name: "bad token gets connection_error and close", noInit: true, token: "mallory", script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{{typ: "connection_error", errorType: "UnauthorizedException", msg: "invalid credentials", check: func(t *testing.T, f frame) {
			if firstError(t, f)["errorCode"] != float64(401) {
				t.Fatalf("errorCode = %v, want 401", firstError(t, f)["errorCode"])
			}
		}}}},
	}, closeCode: websocket.StatusPolicyViolation, closeReason: reasonUnauthorized},
	{name: "no credentials gets connection_error", noInit: true, protos: []string{Subprotocol}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{bad("connection_error", "", "UnauthorizedException", "no credentials")}},
	}, closeCode: websocket.StatusPolicyViolation},
	{name: "undecodable header subprotocol", noInit: true, protos: []string{Subprotocol, "header-%%%"}, script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{bad("connection_error", "", "BadRequestException", "base64url")}},
	}, closeCode: websocket.StatusPolicyViolation},
	{name: "frames before connection_init are refused", noInit: true, token: "alice", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{bad("error", "s1", "BadRequestException", "connection_init first")}},
		{send: map[string]any{"type": "connection_init"}, wants: []want{ok("connection_ack", "")}},
	}},
	{name: "second connection_init", token: "alice", script: []exchange{
		{send: map[string]any{"type": "connection_init"}, wants: []want{bad("error", "", "BadRequestException", "already initialised")}},
	}},
	{name: "unknown message type", token: "alice", script: []exchange{
		{send: map[string]any{"type": "start", "id": "x1"}, wants: []want{bad("error", "x1", "UnsupportedOperation", "start")}},
	}},
	{name: "malformed JSON", token: "alice", script: []exchange{
		{send: rawText(`{"type":`), wants: []want{bad("error", "", "BadRequestException", "not a JSON object")}},
	}},
	{name: "missing type", token: "alice", script: []exchange{
		{send: rawText(`{"id":"a"}`), wants: []want{bad("error", "", "BadRequestException", "no type")}},
	}},
	{name: "wrongly typed field", token: "alice", script: []exchange{
		{send: rawText(`{"type":"subscribe","id":7}`), wants: []want{bad("error", "", "BadRequestException", `"id" must be a string`)}},
	}},
	{name: "binary frame", token: "alice", script: []exchange{
		{send: binaryMsg(`{"type":"ka"}`), wants: []want{bad("error", "", "BadRequestException", "binary")}},
	}},

	// Subscribe and data.
	{name: "subscribe, data once per matching subscription, wildcard", token: "alice", script: []exchange{
		{send: sub("exact", "/Outbound-Messages/alice/room"), wants: []want{ok("subscribe_success", "exact")}},
		{send: sub("wild", "/Outbound-Messages/alice/*"), wants: []want{ok("subscribe_success", "wild")}},
		{send: natsPub{"gh.ch.Outbound-Messages.alice.room", `{"n":1}`}, wants: []want{data("exact", `{"n":1}`), data("wild", `{"n":1}`)}, anyOrder: true},
		{send: natsPub{"gh.ch.Outbound-Messages.alice.other.deep", `"s"`}, wants: []want{data("wild", `"s"`)}},
	}},
	{name: "subscribe id grammar", token: "alice", script: []exchange{
		{send: sub("a.b", "/Outbound-Messages/alice"), wants: []want{bad("subscribe_error", "", "BadRequestException", "^[a-zA-Z0-9-_+]{1,128}$")}},
		{send: sub(strings.Repeat("x", 129), "/Outbound-Messages/alice"), wants: []want{bad("subscribe_error", "", "BadRequestException", "subscription id must match")}},
		{send: sub("", "/Outbound-Messages/alice"), wants: []want{bad("subscribe_error", "", "BadRequestException", "subscription id must match")}},
		{send: sub("A-z_0+"+strings.Repeat("9", 122), "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "A-z_0+"+strings.Repeat("9", 122))}},
	}},
	{name: "duplicate subscription id", token: "alice", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "s1")}},
		{send: sub("s1", "/Outbound-Messages/alice/x"), wants: []want{bad("subscribe_error", "s1", "BadRequestException", "already in use")}},
	}},
	{name: "subscribe without or with a bad channel", token: "alice", script: []exchange{
		{send: map[string]any{"type": "subscribe", "id": "s1"}, wants: []want{bad("subscribe_error", "s1", "BadRequestException", "needs a channel")}},
		{send: sub("s2", "/Outbound-Messages/al.ice"), wants: []want{bad("subscribe_error", "s2", "BadRequestException", "")}},
		{send: sub("s3", "/a/b/c/d/e/f"), wants: []want{bad("subscribe_error", "s3", "BadRequestException", "")}},
	}},
	{name: "subscribe denied by policy", token: "bob", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{bad("subscribe_error", "s1", "UnauthorizedException", "not your channel")}},
	}},
	{name: "subscription limit", token: "alice", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice/1"), wants: []want{ok("subscribe_success", "s1")}},
		{send: sub("s2", "/Outbound-Messages/alice/2"), wants: []want{ok("subscribe_success", "s2")}},
		{send: sub("s3", "/Outbound-Messages/alice/3"), wants: []want{ok("subscribe_success", "s3")}},
		{send: sub("s4", "/Outbound-Messages/alice/4"), wants: []want{bad("subscribe_error", "s4", "MaxSubscriptionsReachedError", "at most 3")}},
	}},
	{name: "per-message authorization on subscribe", token: "alice", script: []exchange{
		{send: withAuth(sub("s1", "/Outbound-Messages/bob"), map[string]string{"Authorization": "bob"}), wants: []want{ok("subscribe_success", "s1")}},
		{send: withAuth(sub("s2", "/Outbound-Messages/alice"), map[string]string{"Authorization": "mallory"}), wants: []want{bad("subscribe_error", "s2", "UnauthorizedException", "invalid credentials")}},
	}},
	{name: "broadcast_error for an event above MaxDeliverBytes", token: "alice", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "s1")}},
		{send: natsPub{"gh.ch.Outbound-Messages.alice", `{"big":"` + strings.Repeat("x", 80) + `"}`}, wants: []want{bad("broadcast_error", "s1", "LimitExceededException", "at most 64 bytes")}},
		{send: natsPub{"gh.ch.Outbound-Messages.alice", `{"small":1}`}, wants: []want{data("s1", `{"small":1}`)}},
	}},

	// Unsubscribe.
	{name: "unsubscribe stops delivery", token: "alice", script: []exchange{
		{send: sub("s1", "/Outbound-Messages/alice"), wants: []want{ok("subscribe_success", "s1")}},
		{send: sub("s2", "/Outbound-Messages/alice/*"), wants: []want{ok("subscribe_success", "s2")}},
		{send: map[string]any{"type": "unsubscribe", "id": "s1"}, wants: []want{ok("unsubscribe_success", "s1")}},
		{send: natsPub{"gh.ch.Outbound-Messages.alice.x", `1`}, wants: []want{data("s2", `1`)}},
		{send: natsPub{"gh.ch.Outbound-Messages.alice", `2`}, wants: []want{data("s2", `2`)}}, // a trailing /* also matches its base channel
		{send: sub("s1", "/Outbound-Messages/alice/y"), wants: []want{ok("subscribe_success", "s1")}},
	}},
	{name: "unsubscribe unknown id", token: "alice", script: []exchange{
		{send: map[string]any{"type": "unsubscribe", "id": "nope"}, wants: []want{bad("unsubscribe_error", "nope", "BadRequestException", "no subscription")}},
		{send: map[string]any{"type": "unsubscribe", "id": "bad.id"}, wants: []want{bad("unsubscribe_error", "", "BadRequestException", "no subscription")}},
	}},

	// Publish.
	{name: "publish lists successful indexes", token: "alice", script: []exchange{
		{send: pub("p1", "/Inbound-Messages/alice", `{"a":1}`, `"text"`, `[1,2]`, `3`, `null`), wants: []want{publishSuccess("p1", []int{0, 1, 2, 3, 4}, 0)}},
	}},
	{name: "publish to an open namespace is delivered to subscribers", token: "alice", script: []exchange{
		{send: sub("s1", "/open/room"), wants: []want{ok("subscribe_success", "s1")}},
		{send: pub("p1", "/open/room", `{"hi":1}`), wants: []want{publishSuccess("p1", []int{0}, 0), data("s1", `{"hi":1}`)}, anyOrder: true},
	}},
	{name: "publish errors", token: "alice", script: []exchange{
		{send: pub("bad.id", "/Inbound-Messages/alice", `{}`), wants: []want{bad("publish_error", "", "BadRequestException", "publish id must match")}},
		{send: pub("p1", "/Inbound-Messages/alice", `1`, `2`, `3`, `4`, `5`, `6`), wants: []want{bad("publish_error", "p1", "BadRequestException", "too many events: 6, at most 5")}},
		{send: map[string]any{"type": "publish", "id": "p2", "channel": "/Inbound-Messages/alice"}, wants: []want{bad("publish_error", "p2", "BadRequestException", "1 to 5 events")}},
		{send: pub("p3", "/Inbound-Messages/alice", map[string]any{"a": 1}), wants: []want{bad("publish_error", "p3", "BadRequestException", "event 0 must be a JSON string")}},
		{send: pub("p4", "/Inbound-Messages/alice", `{"a":`), wants: []want{bad("publish_error", "p4", "BadRequestException", "event 0 is not valid JSON")}},
		{send: pub("p5", "/Inbound-Messages/alice", `"`+strings.Repeat("x", DefaultMaxEventBytes)+`"`), wants: []want{bad("publish_error", "p5", "BadRequestException", "event 0 is too big")}},
		{send: pub("p6", "", `{}`), wants: []want{bad("publish_error", "p6", "BadRequestException", "needs a channel")}},
		{send: pub("p7", "/Inbound-Messages/*", `{}`), wants: []want{bad("publish_error", "p7", "BadRequestException", "")}},
		{send: pub("p8", "/Inbound-Messages/bob", `{}`), wants: []want{bad("publish_error", "p8", "UnauthorizedException", "not your channel")}},
	}},
	{name: "per-message authorization on publish", token: "alice", script: []exchange{
		{send: withAuth(pub("p1", "/Inbound-Messages/bob", `{}`), map[string]string{"Authorization": "Bearer bob"}), wants: []want{publishSuccess("p1", []int{0}, 0)}},
		{send: withAuth(pub("p2", "/Inbound-Messages/alice", `{}`), map[string]string{"x-api-key": "wrong"}), wants: []want{bad("publish_error", "p2", "UnauthorizedException", "invalid credentials")}},
	}},
	{name: "publish rate limit", token: "alice", script: []exchange{
		{send: pub("p1", "/open/r", `1`, `2`, `3`, `4`, `5`), wants: []want{publishSuccess("p1", []int{0, 1, 2, 3, 4}, 0)}},
		{send: pub("p2", "/open/r", `1`, `2`, `3`, `4`), wants: []want{publishSuccess("p2", []int{0, 1, 2, 3}, 0)}},
		{send: pub("p3", "/open/r", `1`, `2`), wants: []want{bad("publish_error", "p3", "LimitExceededException", "publish rate limit")}},
		{send: pub("p4", "/open/r", `1`), wants: []want{publishSuccess("p4", []int{0}, 0)}},
	}},
}

func TestConformance(t *testing.T) {
	t.Parallel()
	e := startEnv(t, conformanceConfig)
	for _, row := range conformanceRows {
		t.Run(row.name, func(t *testing.T) {
			var c *wsClient
			if row.protos != nil {
				c = e.dialWith(row.protos, row.hdr)
			} else {
				c = e.dial(row.token)
			}
			c.t = t
			if got := c.ws.Subprotocol(); got != Subprotocol {
				t.Fatalf("subprotocol %q, want %q echoed", got, Subprotocol)
			}
			if !row.noInit {
				c.send(map[string]any{"type": "connection_init"})
				if f := c.next(); f["type"] != "connection_ack" {
					t.Fatalf("want connection_ack, got %v", f)
				}
			}
			for i, ex := range row.script {
				e.sendExchange(t, c, ex.send)
				if ex.anyOrder {
					checkAnyOrder(t, i, c, ex.wants)
					continue
				}
				for _, w := range ex.wants {
					checkWant(t, i, c.next(), w)
				}
			}
			if row.closeCode != 0 {
				ce := c.closed()
				if ce.Code != row.closeCode || (row.closeReason != "" && ce.Reason != row.closeReason) {
					t.Fatalf("close = %v, want %d %q", ce, row.closeCode, row.closeReason)
				}
				return
			}
			// Nothing else may be pending: a round trip that answers with
			// exactly one frame proves no stray frame came before it.
			c.send(map[string]any{"type": "unsubscribe", "id": "never-subscribed"})
			if f := c.next(); f["type"] != "unsubscribe_error" || f["id"] != "never-subscribed" {
				t.Fatalf("unexpected extra frame %v", f)
			}
		})
	}
}

func (e *env) sendExchange(t *testing.T, c *wsClient, send any) {
	t.Helper()
	switch v := send.(type) {
	case nil:
	case natsPub:
		if err := e.nc.Publish(v.subject, []byte(v.data)); err != nil {
			t.Fatal(err)
		}
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	case rawText:
		c.writeRaw(websocket.MessageText, []byte(v))
	case binaryMsg:
		c.writeRaw(websocket.MessageBinary, v)
	default:
		c.send(v)
	}
}

// checkAnyOrder reads len(wants) frames and matches each to the want of
// its type and id.
func checkAnyOrder(t *testing.T, step int, c *wsClient, wants []want) {
	t.Helper()
	left := append([]want(nil), wants...)
	for range wants {
		f := c.next()
		id, _ := f["id"].(string)
		found := -1
		for j, w := range left {
			if w.typ == f["type"] && w.id == id {
				found = j
				break
			}
		}
		if found < 0 {
			t.Fatalf("step %d: unexpected frame %v", step, f)
		}
		checkWant(t, step, f, left[found])
		left = append(left[:found], left[found+1:]...)
	}
}

func checkWant(t *testing.T, step int, f frame, w want) {
	t.Helper()
	if f["type"] != w.typ {
		t.Fatalf("step %d: got %v, want type %s", step, f, w.typ)
	}
	if id, _ := f["id"].(string); id != w.id {
		t.Fatalf("step %d: %s id %q, want %q", step, w.typ, id, w.id)
	}
	if w.errorType != "" {
		er := firstError(t, f)
		if er["errorType"] != w.errorType {
			t.Fatalf("step %d: errorType %v, want %s (%v)", step, er["errorType"], w.errorType, f)
		}
		if msg, _ := er["message"].(string); msg == "" || !strings.Contains(msg, w.msg) {
			t.Fatalf("step %d: message %q, want it to contain %q", step, msg, w.msg)
		}
	}
	if w.check != nil {
		w.check(t, f)
	}
}

func (c *wsClient) writeRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// TestConformanceHTTP is the POST /event half of the table: the same
// publish rules over HTTP, with AppSync's error shape, and CORS.
func TestConformanceHTTP(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	auth := map[string]string{"Authorization": "alice"}
	tests := []struct {
		name, body string
		hdr        map[string]string
		status     int
		errType    string
		successful int
	}{
		{"five events", `{"channel":"/Inbound-Messages/alice","events":["1","2","3","4","5"]}`, auth, 200, "", 5},
		{"raw Authorization", `{"channel":"/Inbound-Messages/alice","events":["{}"]}`, auth, 200, "", 1},
		{"Bearer Authorization", `{"channel":"/Inbound-Messages/alice","events":["{}"]}`, map[string]string{"Authorization": "Bearer alice"}, 200, "", 1},
		{"x-api-key", `{"channel":"/Inbound-Messages/alice","events":["{}"]}`, map[string]string{"x-api-key": "key-alice"}, 200, "", 1},
		{"no credentials", `{"channel":"/Inbound-Messages/alice","events":["{}"]}`, nil, 401, "UnauthorizedException", 0},
		{"denied", `{"channel":"/Inbound-Messages/bob","events":["{}"]}`, auth, 401, "UnauthorizedException", 0},
		{"six events", `{"channel":"/Inbound-Messages/alice","events":["1","2","3","4","5","6"]}`, auth, 400, "BadRequestException", 0},
		{"no events", `{"channel":"/Inbound-Messages/alice"}`, auth, 400, "BadRequestException", 0},
		{"event not a string", `{"channel":"/Inbound-Messages/alice","events":[1]}`, auth, 400, "BadRequestException", 0},
		{"event too big", `{"channel":"/Inbound-Messages/alice","events":["\"` + strings.Repeat("y", DefaultMaxEventBytes) + `\""]}`, auth, 400, "BadRequestException", 0},
		{"bad channel", `{"channel":"/Inbound-Messages/a b","events":["{}"]}`, auth, 400, "BadRequestException", 0},
		{"body not JSON", `{`, auth, 400, "BadRequestException", 0},
		{"body above ReadLimit", `{"channel":"/x/y","events":["` + strings.Repeat("z", int(DefaultReadLimit)) + `"]}`, auth, 413, "BadRequestException", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, out)
			}
			if tc.errType != "" {
				errs, _ := out["errors"].([]any)
				if len(errs) != 1 || errs[0].(map[string]any)["errorType"] != tc.errType || resp.Header.Get("x-amzn-ErrorType") != tc.errType {
					t.Fatalf("errors %v, x-amzn-ErrorType %q, want %s", out, resp.Header.Get("x-amzn-ErrorType"), tc.errType)
				}
				return
			}
			s, _ := out["successful"].([]any)
			f, isList := out["failed"].([]any)
			if len(s) != tc.successful || !isList || len(f) != 0 {
				t.Fatalf("got %v", out)
			}
			for i, item := range s {
				if m := item.(map[string]any); m["index"] != float64(i) || m["identifier"] == "" {
					t.Fatalf("successful[%d] = %v", i, m)
				}
			}
		})
	}
	t.Run("CORS preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, e.svc.URL()+PathEvent, nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allowed := resp.Header.Get("Access-Control-Allow-Headers")
		for _, h := range []string{"authorization", "content-type", "x-amz-user-agent", "x-api-key", "x-amz-date", "x-amz-security-token"} {
			if !strings.Contains(allowed, h) {
				t.Errorf("preflight does not allow %s: %q", h, allowed)
			}
		}
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// TestKeepAliveInterval checks "ka" frames come at the configured interval
// (counted over a window, never timed exactly).
func TestKeepAliveInterval(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.KeepAliveInterval = 10 * time.Millisecond })
	c := e.connect("alice")
	for i := range 3 {
		f, err := c.read()
		if err != nil || f["type"] != "ka" {
			t.Fatalf("frame %d: want ka, got %v %v", i, f, err)
		}
		if len(f) != 1 {
			t.Fatalf("ka carries extra fields: %v", f)
		}
	}
}
