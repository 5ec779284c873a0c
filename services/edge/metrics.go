package edge

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PathMetrics serves the Prometheus metrics (unless Config.DisableMetrics).
const PathMetrics = "/metrics"

// metricsNamespace prefixes every metric name (gatehouse_edge_...).
const metricsNamespace = "gatehouse"

// Close reasons, the values of the "reason" label of
// gatehouse_edge_ws_connections_closed_total. The set is fixed: a close
// reason sent by an operator (disconnect) is "disconnected", never its text.
const (
	closeNormal       = "normal"        // the client closed or went away
	closeSlowConsumer = "slow_consumer" // the send queue was full
	closeInitTimeout  = "init_timeout"  // no connection_init in time
	closeExpired      = "expired"       // the credentials expired
	closeRevoked      = "revoked"       // the credentials were revoked
	closeDisconnected = "disconnected"  // an operator's disconnect
	closeUnauthorized = "unauthorized"  // refused at connection_init
	closeLimit        = "limit"         // refused by the per-identity limit
	closeShutdown     = "shutdown"      // the edge shut down
	closeError        = "error"         // a write failed, or anything else
)

var closeReasons = []string{closeNormal, closeSlowConsumer, closeInitTimeout, closeExpired, closeRevoked,
	closeDisconnected, closeUnauthorized, closeLimit, closeShutdown, closeError}

// Transports, the values of the "transport" label of
// gatehouse_edge_events_published_total.
const (
	transportWebSocket = iota
	transportHTTP
	numTransports
)

var transportNames = [numTransports]string{"websocket", "http"}

// HTTP routes, the values of the "route" label of
// gatehouse_edge_http_requests_total. WebSocket upgrades (PathRealtime) are
// not counted there: the connection metrics cover them.
const (
	routeChatCompletions = iota
	routeModels
	routeEvent
	routeUsage
	routeKeys
	routeWellKnown
	routeOther
	numRoutes
)

var routeNames = [numRoutes]string{"chat_completions", "models", "event", "usage", "keys", "well_known", "other"}

// Status classes, the values of the "code" label of
// gatehouse_edge_http_requests_total.
const (
	class2xx = iota // also 1xx
	class3xx
	class4xx
	class5xx
	numClasses
)

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx"}

// ttfbBuckets are the upper bounds (seconds) of the time-to-first-chunk
// histogram: 0.5 ms to 30 s.
var ttfbBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30}

// metrics holds the edge's Prometheus collectors, resolved once: the hot
// paths touch only the counters kept here, never a label lookup. Every
// label comes from a small fixed set; per-user figures live in the ledger.
// All fields are safe for concurrent use.
type metrics struct {
	reg *prometheus.Registry

	connsOpen     prometheus.Gauge
	connsAccepted prometheus.Counter
	connsClosed   map[string]prometheus.Counter // by close reason (closeReasons)
	subsActive    prometheus.Gauge
	delivered     prometheus.Counter
	published     [numTransports]prometheus.Counter
	httpRequests  [numRoutes][numClasses]prometheus.Counter
	ttfb          prometheus.Histogram
}

// newMetrics builds the registry of s (Go runtime and process collectors
// included). natsSubscribed reports the NATS subscriptions created so far.
func newMetrics(natsSubscribed func() float64) *metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: "edge", Name: name, Help: help}
	}
	m := &metrics{
		reg:           reg,
		connsOpen:     prometheus.NewGauge(prometheus.GaugeOpts(f("ws_connections", "Open WebSocket connections."))),
		connsAccepted: prometheus.NewCounter(prometheus.CounterOpts(f("ws_connections_accepted_total", "WebSocket connections accepted (upgraded and registered)."))),
		subsActive:    prometheus.NewGauge(prometheus.GaugeOpts(f("subscriptions", "Active WebSocket subscriptions."))),
		delivered:     prometheus.NewCounter(prometheus.CounterOpts(f("ws_data_frames_total", "Data frames (subscribed events) written to WebSockets."))),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "edge", Name: "chat_completions_first_chunk_seconds",
			Help:    "Time from receiving a streaming POST /v1/chat/completions to flushing its first chunk.",
			Buckets: ttfbBuckets,
		}),
	}
	closed := prometheus.NewCounterVec(prometheus.CounterOpts(f("ws_connections_closed_total", "WebSocket connections closed, by reason.")), []string{"reason"})
	m.connsClosed = make(map[string]prometheus.Counter, len(closeReasons))
	for _, r := range closeReasons {
		m.connsClosed[r] = closed.WithLabelValues(r)
	}
	published := prometheus.NewCounterVec(prometheus.CounterOpts(f("events_published_total", "Events published by clients, by transport.")), []string{"transport"})
	for i, t := range transportNames {
		m.published[i] = published.WithLabelValues(t)
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts(f("http_requests_total", "HTTP requests (WebSocket upgrades excluded), by route and status class.")), []string{"route", "code"})
	for r, rn := range routeNames {
		for c, cn := range classNames {
			m.httpRequests[r][c] = requests.WithLabelValues(rn, cn)
		}
	}
	natsSubs := prometheus.NewCounterFunc(prometheus.CounterOpts(f("nats_subscriptions_total", "NATS subjects subscribed (a subject's first local subscriber).")), natsSubscribed)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connsOpen, m.connsAccepted, closed, m.subsActive, natsSubs, m.delivered, published, requests, m.ttfb,
	)
	return m
}

// handler serves the registry in the Prometheus exposition formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// closeReasonLabel maps a socket's close code and reason to its fixed
// label value.
func closeReasonLabel(code uint16, reason string) string {
	switch reason {
	case reasonSlowConsumer:
		return closeSlowConsumer
	case reasonInitTimeout:
		return closeInitTimeout
	case reasonExpired:
		return closeExpired
	case reasonRevoked:
		return closeRevoked
	case reasonUnauthorized:
		return closeUnauthorized
	case reasonLimit:
		return closeLimit
	case reasonShutdown:
		return closeShutdown
	}
	switch code {
	case wsframe.CloseNormal:
		return closeNormal
	case wsframe.CloseGoingAway:
		return closeDisconnected // closeMatching with an operator's reason
	}
	return closeError
}

// routeOf classifies a request path into the fixed route set.
func routeOf(path string) int {
	switch {
	case path == PathChatCompletions:
		return routeChatCompletions
	case path == PathModels || strings.HasPrefix(path, PathModels+"/"):
		return routeModels
	case path == PathEvent:
		return routeEvent
	case path == PathUsage:
		return routeUsage
	case path == PathKeys || strings.HasPrefix(path, PathKeys+"/"):
		return routeKeys
	case strings.HasPrefix(path, "/.well-known/"):
		return routeWellKnown
	}
	return routeOther
}

func classOf(status int) int {
	switch {
	case status >= 500:
		return class5xx
	case status >= 400:
		return class4xx
	case status >= 300:
		return class3xx
	}
	return class2xx
}

// instrument counts every HTTP request h serves by route and status class,
// except WebSocket upgrades.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathRealtime {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusRecorder{ResponseWriter: w}
		defer func() {
			m.httpRequests[routeOf(r.URL.Path)][classOf(sw.status)].Inc()
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusRecorder remembers the response status (for the request counters
// and the HTTP spans); Unwrap keeps http.ResponseController (flush,
// deadlines) working through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observeFirstChunk records the time to the first chunk of a streaming
// chat completion that started at start.
func (m *metrics) observeFirstChunk(start time.Time) {
	m.ttfb.Observe(time.Since(start).Seconds())
}
