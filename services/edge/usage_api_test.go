package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// contractMeter answers gh.meter.v1.usage per the pkg/bus contract, the
// way meter does: 403 for another user's usage, rows otherwise. It
// records the queries it received.
type contractMeter struct {
	mu      sync.Mutex
	queries []bus.UsageQuery
}

func startContractMeter(t *testing.T, nc *nats.Conn) *contractMeter {
	t.Helper()
	m := &contractMeter{}
	svc, err := micro.AddService(nc, micro.Config{Name: "meter-contract", Version: "0.0.1", QueueGroup: bus.QueueMeter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("usage", micro.HandlerFunc(func(req micro.Request) {
		var q bus.UsageQuery
		if err := json.Unmarshal(req.Data(), &q); err != nil {
			_ = req.Error(bus.CodeBadRequest, "invalid JSON", nil)
			return
		}
		m.mu.Lock()
		m.queries = append(m.queries, q)
		m.mu.Unlock()
		if q.Sub != "" {
			_ = req.Error(bus.CodeForbidden, `only members of group "gatehouse-admins" may query another user's usage`, nil)
			return
		}
		bus.Respond(req, bus.UsageResponse{Rows: []bus.UsageRow{{Group: "echo", Requests: 2, InputTokens: 3, OutputTokens: 4, TotalTokens: 7}}})
	}), micro.WithEndpointSubject(bus.NewSubjects("").MeterUsage()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *contractMeter) last() bus.UsageQuery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queries[len(m.queries)-1]
}

func getUsage(t *testing.T, e *env, auth, query string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.svc.URL()+PathUsage+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	return resp.StatusCode, out
}

func TestUsageAPI(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	m := startContractMeter(t, e.nc)

	code, body := getUsage(t, e, "alice", "?from=2026-03-01&to=2026-03-02T12:00:00Z&group_by=model")
	if code != http.StatusOK {
		t.Fatalf("own usage: %d %v", code, body)
	}
	q := m.last()
	if q.Identity.Sub != "alice" || q.Sub != "" || q.GroupBy != "model" ||
		!q.From.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !q.To.Equal(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("meter was asked %+v", q)
	}
	rows, _ := body["rows"].([]any)
	if body["sub"] != "alice" || len(rows) != 1 || rows[0].(map[string]any)["totalTokens"] != float64(7) {
		t.Errorf("answer %v", body)
	}

	// No range: the last DefaultUsageRange.
	if code, _ := getUsage(t, e, "alice", ""); code != http.StatusOK {
		t.Fatalf("default range: %d", code)
	}
	if q := m.last(); q.To.Sub(q.From) != DefaultUsageRange {
		t.Errorf("default range %s..%s", q.From, q.To)
	}

	// Naming oneself is the same as naming nobody.
	if code, _ := getUsage(t, e, "alice", "?sub=alice"); code != http.StatusOK || m.last().Sub != "" {
		t.Errorf("sub=self: %d, meter asked %+v", code, m.last())
	}
	// Someone else's: meter decides, the edge passes its answer on.
	code, body = getUsage(t, e, "alice", "?sub=bob")
	if code != http.StatusForbidden || !strings.Contains(body["error"].(map[string]any)["message"].(string), "gatehouse-admins") {
		t.Errorf("sub=bob: %d %v", code, body)
	}

	for _, tt := range []struct{ query, want string }{
		{"?from=yesterday", `from "yesterday"`},
		{"?to=2026-13-01", `to "2026-13-01"`},
		{"?from=2026-03-02&to=2026-03-01", "to must be after from"},
		{"?group_by=week", `group_by "week"`},
		{"?limit=5", `unknown parameter "limit"`},
	} {
		code, body := getUsage(t, e, "alice", tt.query)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %q, want 400 naming %q", tt.query, code, msg, tt.want)
		}
	}
	if code, _ := getUsage(t, e, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := getUsage(t, e, "mallory", ""); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", code)
	}
}

func TestUsageAPIMeterDown(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	code, body := getUsage(t, e, "alice", "")
	if code != http.StatusServiceUnavailable {
		t.Errorf("without meter: %d %v, want 503", code, body)
	}
}
