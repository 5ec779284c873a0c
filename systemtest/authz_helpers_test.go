package systemtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/nats-io/nats.go"
)

// operatorIdentity is who the tests manage keys as: a tool on the bus.
var operatorIdentity = identity.Identity{Sub: "systemtest", Issuer: "systemtest", ChannelID: "systemtest", Kind: identity.KindService}

// busConn connects the test to the dev stack's embedded NATS in-process.
func busConn(t *testing.T, dev *stack.Dev) *nats.Conn {
	t.Helper()
	nc, err := bus.ConnectInProcess(dev.Server(), "systemtest", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// createKey creates an API key through authz, as an operator tool does.
func createKey(ctx context.Context, t *testing.T, nc *nats.Conn, req bus.KeyCreateRequest) bus.KeyCreateResponse {
	t.Helper()
	req.Caller = operatorIdentity
	resp, err := bus.Request[bus.KeyCreateResponse](ctx, nc, bus.NewSubjects("").AuthzKeysCreate(), req, nil)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return resp
}

// dialAuth connects with the given authorization headers (Authorization or
// x-api-key) in the header- subprotocol, as the Amplify client does.
func dialAuth(ctx context.Context, t *testing.T, baseURL, caFile string, auth map[string]string) (*appsyncClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	h := map[string]string{"host": u.Host}
	for k, v := range auth {
		h[k] = v
	}
	hdr, _ := json.Marshal(h)
	wsURL := strings.Replace(baseURL, "https://", "wss://", 1) + "/event/realtime"
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   httpClientTrusting(t, caFile),
		Subprotocols: []string{"aws-appsync-event-ws", "header-" + base64.RawURLEncoding.EncodeToString(hdr)},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("dial %s (HTTP %d): %w", wsURL, status, err)
	}
	conn.SetReadLimit(4 << 20)
	c := &appsyncClient{t: t, conn: conn, host: u.Host}
	t.Cleanup(func() { conn.CloseNow() })
	if err := c.send(ctx, frame{Type: "connection_init"}); err != nil {
		return nil, err
	}
	f, err := c.next(ctx)
	if err != nil {
		return nil, err
	}
	if f.Type != "connection_ack" {
		return nil, fmt.Errorf("want connection_ack, got %+v", f)
	}
	return c, nil
}

// op sends a subscribe or publish frame carrying auth and returns the answer.
func (c *appsyncClient) op(ctx context.Context, typ, id, ch string, auth map[string]string, events ...string) frame {
	c.t.Helper()
	a := map[string]string{"host": c.host}
	for k, v := range auth {
		a[k] = v
	}
	if err := c.send(ctx, frame{Type: typ, ID: id, Channel: ch, Events: events, Authorization: a}); err != nil {
		c.t.Fatal(err)
	}
	return c.answer(ctx, id)
}

// httpEventResult is the answer of POST /event.
type httpEventResult struct {
	Status     int
	Successful []publishResult `json:"successful"`
	Failed     []publishResult `json:"failed"`
	Errors     []frameError    `json:"errors"`
}

// postEvent publishes over HTTP with the given headers.
func postEvent(ctx context.Context, t *testing.T, client *http.Client, baseURL string, hdr map[string]string, ch string, events ...string) httpEventResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"channel": ch, "events": events})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/event", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r httpEventResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("POST /event %s: undecodable answer (HTTP %d): %v", ch, resp.StatusCode, err)
	}
	r.Status = resp.StatusCode
	return r
}
