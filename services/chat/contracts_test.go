package chat_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// contracts are small stand-ins for authz, meter and cache that answer on their
// real subjects with the pkg/bus wire types and record what they were
// asked. Whole-system tests with the real services live in the root module.
type contracts struct {
	mu       sync.Mutex
	reserves []bus.ReserveRequest
	settles  []bus.SettleRequest
	gets     []bus.CacheGetRequest
	puts     []bus.CachePutRequest
	entries  map[string]bus.CacheEntry
	refusal  *bus.QuotaRefusal // when set, reserve refuses with it
	checks   []bus.ModelCheckRequest
	denials  map[string]string // model -> reason: the stand-in authz denies it
}

// contractOpts chooses which stand-ins run.
type contractOpts struct {
	noMeter, noCache, noAuthz bool
}

// testWindow is the quota window the stand-in meter reports; Used grows
// with settled tokens.
var testWindow = bus.QuotaWindow{Scope: "user", Window: "rolling24h", Metric: "totalTokens", Limit: 100000}

func startContracts(t testing.TB, nc *nats.Conn, prefix string, o contractOpts) *contracts {
	t.Helper()
	c := &contracts{entries: map[string]bus.CacheEntry{}, denials: map[string]string{}}
	s := bus.NewSubjects(prefix)
	type endpoint struct {
		name, subject string
		h             micro.HandlerFunc
	}
	add := func(name, queue string, eps []endpoint) {
		svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "0.0.1", QueueGroup: queue})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
		for _, e := range eps {
			if err := svc.AddEndpoint(e.name, e.h, micro.WithEndpointSubject(e.subject)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !o.noAuthz {
		add("test-authz", bus.QueueAuthz, []endpoint{
			{"check", s.AuthzCheck(), func(r micro.Request) {
				var in bus.ModelCheckRequest
				if err := json.Unmarshal(r.Data(), &in); err != nil || in.Op != bus.OpInvoke {
					_ = r.Error(bus.CodeBadRequest, "the stand-in authz answers invoke checks only", nil)
					return
				}
				c.mu.Lock()
				c.checks = append(c.checks, in)
				reason, denied := c.denials[in.Model]
				c.mu.Unlock()
				if denied {
					bus.Respond(r, bus.CheckResponse{Reason: reason})
					return
				}
				bus.Respond(r, bus.CheckResponse{Allow: true})
			}},
		})
	}
	if !o.noMeter {
		add("test-meter", bus.QueueMeter, []endpoint{
			{"reserve", s.MeterReserve(), func(r micro.Request) {
				var in bus.ReserveRequest
				_ = json.Unmarshal(r.Data(), &in)
				c.mu.Lock()
				c.reserves = append(c.reserves, in)
				refusal, w := c.refusal, c.window()
				c.mu.Unlock()
				if refusal != nil {
					bus.Respond(r, bus.ReserveResponse{Refusal: refusal, Windows: []bus.QuotaWindow{refusal.QuotaWindow}})
					return
				}
				bus.Respond(r, bus.ReserveResponse{Granted: true, Windows: []bus.QuotaWindow{w}})
			}},
			{"settle", s.MeterSettle(), func(r micro.Request) {
				var in bus.SettleRequest
				_ = json.Unmarshal(r.Data(), &in)
				c.mu.Lock()
				c.settles = append(c.settles, in)
				w := c.window()
				c.mu.Unlock()
				bus.Respond(r, bus.SettleResponse{Windows: []bus.QuotaWindow{w}})
			}},
		})
	}
	if !o.noCache {
		add("test-cache", bus.QueueCache, []endpoint{
			{"get", s.CacheGet(), func(r micro.Request) {
				var in bus.CacheGetRequest
				_ = json.Unmarshal(r.Data(), &in)
				c.mu.Lock()
				c.gets = append(c.gets, in)
				e, ok := c.entries[in.Key]
				c.mu.Unlock()
				if !ok {
					bus.Respond(r, bus.CacheGetResponse{})
					return
				}
				bus.Respond(r, bus.CacheGetResponse{Hit: true, Entry: &e})
			}},
			{"put", s.CachePut(), func(r micro.Request) {
				var in bus.CachePutRequest
				_ = json.Unmarshal(r.Data(), &in)
				c.mu.Lock()
				c.puts = append(c.puts, in)
				c.mu.Unlock()
				bus.Respond(r, bus.CachePutResponse{Stored: true})
			}},
		})
	}
	return c
}

// window returns the quota window after the settlements so far. c.mu held.
func (c *contracts) window() bus.QuotaWindow {
	w := testWindow
	for _, s := range c.settles {
		w.Used += s.Usage.TotalTokens
	}
	w.Remaining = w.Limit - w.Used
	return w
}

// snapshot returns copies of what the stand-ins were asked.
func (c *contracts) snapshot() (reserves []bus.ReserveRequest, settles []bus.SettleRequest, puts []bus.CachePutRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.ReserveRequest(nil), c.reserves...),
		append([]bus.SettleRequest(nil), c.settles...),
		append([]bus.CachePutRequest(nil), c.puts...)
}

// getCount returns how many lookups the stand-in cache answered.
func (c *contracts) getCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.gets)
}

// deny makes the stand-in authz refuse model with reason ("" allows it
// again).
func (c *contracts) deny(model, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reason == "" {
		delete(c.denials, model)
		return
	}
	c.denials[model] = reason
}

// checked returns a copy of the invoke checks the stand-in authz answered.
func (c *contracts) checked() []bus.ModelCheckRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.ModelCheckRequest(nil), c.checks...)
}

// cacheGets returns how many cache lookups the stand-in cache answered.
func (c *contracts) cacheGets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.gets)
}
