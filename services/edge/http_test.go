package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
)

func (e *env) post(body string, hdr map[string]string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.svc.URL()+PathEvent, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("decode reply: %v", err)
	}
	return resp, out
}

func TestPostEvent(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	good := `{"channel":"/Inbound-Messages/alice","events":["{\"a\":1}","{\"b\":2}"]}`
	tests := []struct {
		name    string
		body    string
		hdr     map[string]string
		status  int
		errType string
	}{
		{"bearer token", good, map[string]string{"Authorization": "Bearer alice"}, 200, ""},
		{"api key", good, map[string]string{"x-api-key": "key-alice"}, 200, ""},
		{"no credentials", good, nil, 401, "UnauthorizedException"},
		{"bad token", good, map[string]string{"Authorization": "mallory"}, 401, "UnauthorizedException"},
		{"denied channel", `{"channel":"/Inbound-Messages/bob","events":["{}"]}`, map[string]string{"Authorization": "alice"}, 401, "UnauthorizedException"},
		{"not json body", `nope`, map[string]string{"Authorization": "alice"}, 400, "BadRequestException"},
		{"too many events", `{"channel":"/Inbound-Messages/alice","events":["1","2","3","4","5","6"]}`, map[string]string{"Authorization": "alice"}, 400, "BadRequestException"},
		{"event not string", `{"channel":"/Inbound-Messages/alice","events":[{"a":1}]}`, map[string]string{"Authorization": "alice"}, 400, "BadRequestException"},
		{"no leading slash", `{"channel":"Inbound-Messages/alice","events":["{}"]}`, map[string]string{"Authorization": "alice"}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, out)
			}
			if tc.errType != "" {
				errs := out["errors"].([]any)
				if errs[0].(map[string]any)["errorType"] != tc.errType {
					t.Fatalf("got %v", out)
				}
				return
			}
			if len(out["successful"].([]any)) == 0 || out["failed"] == nil {
				t.Fatalf("got %v", out)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://app.example.com", "*.trusted.dev"} })
	tests := []struct {
		origin string
		ok     bool
	}{
		{"https://app.example.com", true},
		{"https://x.trusted.dev", true},
		{"https://evil.example.com", false},
		{"http://app.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, e.svc.URL()+PathEvent, nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !tc.ok {
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
				}
				return
			}
			if resp.StatusCode != http.StatusNoContent ||
				resp.Header.Get("Access-Control-Allow-Origin") != tc.origin ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "x-amz-user-agent") {
				t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
			}
		})
	}
	// The same allowlist guards WebSocket upgrades.
	resp, _ := e.post(`{}`, map[string]string{"Origin": "https://evil.example.com"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST from a foreign origin: %d", resp.StatusCode)
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	get := func(path string) (int, string) {
		resp, err := e.client.Get(e.svc.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(PathHealthz); code != 200 || body != "ok" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, _ := get(PathReadyz); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	e.edgeNC.Close()
	if code, _ := get(PathReadyz); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with NATS closed: %d", code)
	}
}

func TestHandleAddsRoutes(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	svc, err := New(Config{Addr: "127.0.0.1:0", PlainHTTP: true}, nc)
	if err != nil {
		t.Fatal(err)
	}
	svc.Handle("GET /test/extra-route", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "models")
	}))
	e := &env{t: t, svc: svc, done: make(chan error, 1), client: http.DefaultClient}
	runWith(t, e)
	if !strings.HasPrefix(svc.URL(), "http://localhost:") || svc.CAFile() != "" {
		t.Fatalf("URL %q CAFile %q", svc.URL(), svc.CAFile())
	}
	resp, err := http.Get(svc.URL() + "/test/extra-route")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "models" {
		t.Fatalf("got %q", b)
	}
}
