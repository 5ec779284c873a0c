package chat

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// headroomEntry is meter's last word on one caller's budgets.
type headroomEntry struct {
	at   time.Time
	wins []bus.QuotaWindow
}

// headroom remembers, per caller, the quota windows of meter's last answer
// to this replica (a grant or a settlement), so that a request which fits
// well inside them may start its model call while its reservation is
// asked for (see [Config.EarlyModelCall]). It is a hint, never a decision:
// meter's answer still grants or refuses every request, and no chunk is
// relayed before it grants.
//
// A request fits when the hint is at most [HeadroomTTL] old and every
// window leaves at least [HeadroomMargin] times what the request reserves
// on it. A fitting request's amounts are taken off the hint at once, so a
// burst from one caller does not start on the same headroom twice. A
// refusal forgets the caller, so the next request waits for meter. At most
// [MaxHeadroomEntries] callers are remembered. Its methods are safe for
// concurrent use.
type headroom struct {
	mu  sync.Mutex
	m   map[string]headroomEntry
	max int
	ttl time.Duration
}

func newHeadroom(maxEntries int, ttl time.Duration) *headroom {
	return &headroom{m: make(map[string]headroomEntry), max: maxEntries, ttl: ttl}
}

// take reports whether req fits the caller's last known windows at now,
// and if so takes its amounts off them.
func (h *headroom) take(key string, req bus.ReserveRequest, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[key]
	if !ok || now.Sub(e.at) > h.ttl || now.Before(e.at) {
		return false
	}
	for _, w := range e.wins {
		need, known := reserveNeed(req, w.Metric)
		if !known || (need > 0 && w.Remaining < HeadroomMargin*need) {
			return false
		}
	}
	for i := range e.wins {
		need, _ := reserveNeed(req, e.wins[i].Metric)
		e.wins[i].Remaining -= need
	}
	return true
}

// record replaces the caller's windows with meter's answer at now.
func (h *headroom) record(key string, wins []bus.QuotaWindow, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.max < 1 {
		return
	}
	if _, ok := h.m[key]; !ok && len(h.m) >= h.max {
		for k, old := range h.m {
			if now.Sub(old.at) > h.ttl {
				delete(h.m, k)
			}
		}
		for k := range h.m {
			if len(h.m) < h.max {
				break
			}
			delete(h.m, k)
		}
	}
	h.m[key] = headroomEntry{at: now, wins: slices.Clone(wins)}
}

// forget drops the caller, after a refusal or a failed reservation.
func (h *headroom) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}

// len returns the number of callers remembered.
func (h *headroom) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

// reserveNeed is what req reserves of metric, and whether the metric is
// known here: a window of a metric chat does not know never fits.
func reserveNeed(req bus.ReserveRequest, metric string) (int64, bool) {
	switch metric {
	case bus.MetricRequests:
		return 1, true
	case bus.MetricInputTokens:
		return req.InputTokens, true
	case bus.MetricOutputTokens:
		return req.MaxOutputTokens, true
	case bus.MetricTotalTokens:
		return req.InputTokens + req.MaxOutputTokens, true
	case bus.MetricSpend:
		return req.MaxCostMicroUSD, true
	}
	return 0, false
}

// budgetKey joins what meter's budgets of a caller depend on: kind,
// issuer, sub, API key id, plan and tenant, separated by a control
// character none of them contains.
func budgetKey(id identity.Identity) string {
	return strings.Join([]string{string(id.Kind), id.Issuer, id.Sub, id.KeyID, id.Plan, id.Tenant}, "\x00")
}
