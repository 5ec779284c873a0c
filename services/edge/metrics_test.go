package edge

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// scrape GETs /metrics and parses the text exposition.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp, err := e.client.Get(e.svc.URL() + PathMetrics)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: status %d", PathMetrics, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parse metrics: %v", err)
	}
	return mfs
}

// metricValue returns the value of the gauge or counter name whose labels
// include labels (name=value pairs), and whether it exists.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)

	// A socket that comes and goes: accepted, then closed normally.
	gone := e.connect("alice")
	if err := gone.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first socket to be unregistered", func() bool { return e.svc.NumConnections() == 0 })

	c := e.connect("alice")
	if f := c.subscribe("s1", "/Outbound-Messages/alice"); f["type"] != "subscribe_success" {
		t.Fatalf("subscribe s1: %v", f)
	}
	if f := c.subscribe("s2", "/open/room"); f["type"] != "subscribe_success" {
		t.Fatalf("subscribe s2: %v", f)
	}
	// Publish to the room the socket listens to: it gets its own event.
	c.send(map[string]any{"type": "publish", "id": "p1", "channel": "/open/room", "events": []string{`{"n":1}`}})
	got := map[string]int{}
	for range 2 {
		got[c.next()["type"].(string)]++
	}
	if got["publish_success"] != 1 || got["data"] != 1 {
		t.Fatalf("frames after publish = %v, want one publish_success and one data", got)
	}
	if resp, out := e.post(`{"channel":"/Inbound-Messages/alice","events":["{\"a\":1}","{\"b\":2}"]}`, map[string]string{"Authorization": "alice"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /event: %d %v", resp.StatusCode, out)
	}
	if resp, out := e.post(`{"channel":"/Inbound-Messages/alice","events":["{}"]}`, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /event without credentials: %d %v", resp.StatusCode, out)
	}

	mfs := e.scrape()
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gatehouse_edge_ws_connections", nil, 1},
		{"gatehouse_edge_ws_connections_accepted_total", nil, 2},
		{"gatehouse_edge_ws_connections_closed_total", []string{"reason", "normal"}, 1},
		{"gatehouse_edge_ws_connections_closed_total", []string{"reason", "slow_consumer"}, 0},
		{"gatehouse_edge_subscriptions", nil, 2},
		{"gatehouse_edge_nats_subscriptions_total", nil, float64(e.svc.hub.Subscribed())},
		{"gatehouse_edge_ws_data_frames_total", nil, 1},
		{"gatehouse_edge_events_published_total", []string{"transport", "websocket"}, 1},
		{"gatehouse_edge_events_published_total", []string{"transport", "http"}, 2},
		{"gatehouse_edge_http_requests_total", []string{"route", "event", "code", "2xx"}, 1},
		{"gatehouse_edge_http_requests_total", []string{"route", "event", "code", "4xx"}, 1},
		{"gatehouse_edge_http_requests_total", []string{"route", "chat_completions", "code", "2xx"}, 0},
	}
	for _, tc := range tests {
		got, ok := metricValue(mfs, tc.name, tc.labels...)
		if !ok {
			t.Errorf("%s%v: missing", tc.name, tc.labels)
			continue
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if e.svc.hub.Subscribed() < 2 {
		t.Errorf("hub subscribed %d NATS subjects, want at least 2", e.svc.hub.Subscribed())
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "gatehouse_edge_chat_completions_first_chunk_seconds"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	// The scrape itself is counted once it is answered.
	mfs = e.scrape()
	if got, _ := metricValue(mfs, "gatehouse_edge_http_requests_total", "route", "other", "code", "2xx"); got != 1 {
		t.Errorf("scrapes counted as route other = %v, want 1", got)
	}

	// Unsubscribing and closing bring the gauges back to zero.
	c.send(map[string]any{"type": "unsubscribe", "id": "s1"})
	if f := c.next(); f["type"] != "unsubscribe_success" {
		t.Fatalf("unsubscribe: %v", f)
	}
	if err := c.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second socket to be unregistered", func() bool { return e.svc.NumConnections() == 0 })
	mfs = e.scrape()
	for _, name := range []string{"gatehouse_edge_ws_connections", "gatehouse_edge_subscriptions"} {
		if got, _ := metricValue(mfs, name); got != 0 {
			t.Errorf("%s = %v after close, want 0", name, got)
		}
	}
	if got, _ := metricValue(mfs, "gatehouse_edge_ws_connections_closed_total", "reason", "normal"); got != 2 {
		t.Errorf("closed normal = %v, want 2", got)
	}
}

func TestMetricsDisabled(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *Config) { c.DisableMetrics = true })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.svc.URL()+PathMetrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET %s with metrics disabled: status %d, want 404", PathMetrics, resp.StatusCode)
	}
}

func TestMetricLabels(t *testing.T) {
	t.Parallel()
	routes := map[string]string{
		PathChatCompletions:   "chat_completions",
		PathModels:            "models",
		PathModels + "/gpt-x": "models",
		PathEvent:             "event",
		PathUsage:             "usage",
		PathKeys:              "keys",
		PathKeys + "/k1":      "keys",
		PathOIDCDiscovery:     "well_known",
		PathJWKS:              "well_known",
		PathMetrics:           "other",
		"/v1/usage/alice":     "other",
		"/anything/user-42":   "other",
	}
	for path, want := range routes {
		if got := routeNames[routeOf(path)]; got != want {
			t.Errorf("routeOf(%q) = %s, want %s", path, got, want)
		}
	}
	for status, want := range map[int]string{0: "2xx", 101: "2xx", 200: "2xx", 204: "2xx", 301: "3xx", 404: "4xx", 429: "4xx", 500: "5xx", 504: "5xx"} {
		if got := classNames[classOf(status)]; got != want {
			t.Errorf("classOf(%d) = %s, want %s", status, got, want)
		}
	}
	reasons := []struct {
		code   websocket.StatusCode
		reason string
		want   string
	}{
		{websocket.StatusNormalClosure, "", closeNormal},
		{websocket.StatusPolicyViolation, reasonSlowConsumer, closeSlowConsumer},
		{websocket.StatusPolicyViolation, reasonInitTimeout, closeInitTimeout},
		{websocket.StatusPolicyViolation, reasonExpired, closeExpired},
		{websocket.StatusPolicyViolation, reasonRevoked, closeRevoked},
		{websocket.StatusPolicyViolation, reasonUnauthorized, closeUnauthorized},
		{websocket.StatusPolicyViolation, reasonLimit, closeLimit},
		{websocket.StatusGoingAway, reasonShutdown, closeShutdown},
		{websocket.StatusGoingAway, "maintenance for user 42", closeDisconnected},
		{websocket.StatusAbnormalClosure, "", closeError},
	}
	for _, tc := range reasons {
		if got := closeReasonLabel(uint16(tc.code), tc.reason); got != tc.want {
			t.Errorf("closeReasonLabel(%d, %q) = %s, want %s", tc.code, tc.reason, got, tc.want)
		}
	}
}

func TestMetricsChatCompletions(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	fakeChat(t, e.nc, "", func(bus.ChatRequest, string) []bus.Event { return answerEvents("Hel", "lo") })
	// One streaming and one plain completion: only the stream is timed.
	for _, body := range []string{`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, oaHello} {
		resp := e.postOA(PathChatCompletions, "alice", body)
		if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v", PathChatCompletions, resp.StatusCode, err)
		}
	}
	mfs := e.scrape()
	if got, _ := metricValue(mfs, "gatehouse_edge_http_requests_total", "route", "chat_completions", "code", "2xx"); got != 2 {
		t.Errorf("chat_completions 2xx = %v, want 2", got)
	}
	mf := mfs["gatehouse_edge_chat_completions_first_chunk_seconds"]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("first chunk histogram missing: %v", mf)
	}
	h := mf.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 || h.GetSampleSum() > testTimeout.Seconds() {
		t.Errorf("first chunk histogram: count %d sum %v, want one positive sample", h.GetSampleCount(), h.GetSampleSum())
	}
	if n := len(h.GetBucket()); n != len(ttfbBuckets)+1 { // and +Inf
		t.Errorf("histogram has %d buckets, want %d", n, len(ttfbBuckets)+1)
	}
}
