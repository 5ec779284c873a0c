package systemtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// frame is an AppSync Events message, as sent and received.
type frame struct {
	Type                string            `json:"type"`
	ID                  string            `json:"id,omitempty"`
	Channel             string            `json:"channel,omitempty"`
	Events              []string          `json:"events,omitempty"`
	Event               json.RawMessage   `json:"event,omitempty"`
	Authorization       map[string]string `json:"authorization,omitempty"`
	ConnectionTimeoutMs int64             `json:"connectionTimeoutMs,omitempty"`
	Successful          []publishResult   `json:"successful,omitempty"`
	Failed              []publishResult   `json:"failed,omitempty"`
	Errors              []frameError      `json:"errors,omitempty"`
}

type publishResult struct {
	Identifier string `json:"identifier"`
	Index      int    `json:"index"`
	Code       any    `json:"code,omitempty"`
	Message    string `json:"message,omitempty"`
}

type frameError struct {
	ErrorType string `json:"errorType"`
	Message   string `json:"message"`
}

// appsyncClient speaks the AppSync Events WebSocket protocol the way the
// aws-amplify client does, over a coder/websocket connection.
type appsyncClient struct {
	t       testing.TB
	conn    *websocket.Conn
	token   string
	host    string
	pending []frame // frames read while waiting for a specific answer
}

// httpClientTrusting returns an HTTP client that trusts the PEM CA at caFile.
func httpClientTrusting(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read dev CA: %v", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("dev CA %s holds no certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
}

// dialAppSync connects as the holder of token and completes connection_init.
func dialAppSync(ctx context.Context, t testing.TB, baseURL, caFile, token string) *appsyncClient {
	t.Helper()
	c, err := tryDialAppSync(ctx, t, baseURL, caFile, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDialAppSync(ctx context.Context, t testing.TB, baseURL, caFile, token string) (*appsyncClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	hdr, _ := json.Marshal(map[string]string{"host": u.Host, "Authorization": token})
	wsURL := strings.Replace(baseURL, "https://", "wss://", 1) + "/event/realtime"
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   httpClientTrusting(t, caFile),
		Subprotocols: []string{"aws-appsync-event-ws", "header-" + base64.RawURLEncoding.EncodeToString(hdr)},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	conn.SetReadLimit(4 << 20)
	c := &appsyncClient{t: t, conn: conn, token: token, host: u.Host}
	t.Cleanup(func() { conn.CloseNow() })
	if conn.Subprotocol() != "aws-appsync-event-ws" {
		return nil, fmt.Errorf("server chose subprotocol %q", conn.Subprotocol())
	}
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
	if f.ConnectionTimeoutMs <= 0 {
		return nil, fmt.Errorf("connection_ack without connectionTimeoutMs: %+v", f)
	}
	return c, nil
}

func (c *appsyncClient) auth() map[string]string {
	return map[string]string{"host": c.host, "Authorization": c.token}
}

func (c *appsyncClient) send(ctx context.Context, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.conn.Write(ctx, websocket.MessageText, b)
}

// next returns the next frame that is not a keep-alive.
func (c *appsyncClient) next(ctx context.Context) (frame, error) {
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return frame{}, fmt.Errorf("read: %w", err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			return frame{}, fmt.Errorf("undecodable frame %s: %w", b, err)
		}
		if f.Type == "ka" {
			continue
		}
		return f, nil
	}
}

func (c *appsyncClient) mustNext(ctx context.Context) frame {
	c.t.Helper()
	f, err := c.next(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// subscribe sends a subscribe and returns the server's answer frame.
func (c *appsyncClient) subscribe(ctx context.Context, id, ch string) frame {
	c.t.Helper()
	if err := c.send(ctx, frame{Type: "subscribe", ID: id, Channel: ch, Authorization: c.auth()}); err != nil {
		c.t.Fatal(err)
	}
	return c.answer(ctx, id)
}

// publish sends events (each already a JSON text) and returns the answer.
func (c *appsyncClient) publish(ctx context.Context, id, ch string, events ...string) frame {
	c.t.Helper()
	if err := c.send(ctx, frame{Type: "publish", ID: id, Channel: ch, Events: events, Authorization: c.auth()}); err != nil {
		c.t.Fatal(err)
	}
	return c.answer(ctx, id)
}

// answer returns the first frame that is not data (the answer to operation
// id), keeping data frames that arrive before it for later reads: an answer
// may start streaming before publish_success is written.
func (c *appsyncClient) answer(ctx context.Context, id string) frame {
	c.t.Helper()
	var held []frame
	defer func() { c.pending = append(held, c.pending...) }()
	for {
		f := c.mustNext(ctx)
		if f.Type == "data" {
			held = append(held, f)
			continue
		}
		if f.ID != "" && f.ID != id {
			c.t.Fatalf("answer for %q while waiting for %q: %+v", f.ID, id, f)
		}
		return f
	}
}

// eventText returns the text of a data frame's event: AppSync sends it as a
// JSON string holding JSON.
func eventText(t testing.TB, f frame) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(f.Event, &s); err == nil {
		return s
	}
	return string(f.Event)
}
