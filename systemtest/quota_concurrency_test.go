package systemtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/gatehouse-ai/gatehouse/services/chat"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/nats-io/nats.go"
)

// Shape of the concurrency test: every request has quotaWords input words
// and asks for at most quotaMaxTokens output tokens, and echo produces
// exactly that many (the text is longer), so a request's maximum and its
// actual usage are both quotaPerRequest tokens.
const (
	quotaRequests   = 200
	quotaWords      = 20
	quotaMaxTokens  = 10
	quotaPerRequest = quotaWords + quotaMaxTokens
	quotaLimit      = 1500 // L: room for 50 requests
)

// quotaConfig is a dev configuration whose default user plan allows
// quotaLimit total tokens per rolling 24 h.
func quotaConfig(t *testing.T, dbURL string) config.Config {
	cfg := devConfig(t, dbURL)
	cfg.Meter.Plans = map[string]config.QuotaPlan{"tight": {Rolling24h: config.QuotaLimits{TotalTokens: quotaLimit}}}
	cfg.Meter.DefaultPlans.User = "tight"
	cfg.Edge.PublishRate = 10_000
	cfg.Edge.PublishBurst = 1_000
	cfg.Chat.EchoDelay = time.Millisecond
	return cfg
}

// runExtra runs svc on its own in-process connection to dev's NATS server
// until the test ends.
func runExtra(t *testing.T, dev *stack.Dev, name string, build func(nc *nats.Conn) (interface{ Run(context.Context) error }, error)) {
	t.Helper()
	nc, err := bus.ConnectInProcess(dev.Server(), name, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := build(nc)
	if err != nil {
		nc.Close()
		t.Fatalf("%s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s stopped with error: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", name)
		}
		nc.Close()
	})
}

// quotaText is request i's text: more words than it may answer with.
func quotaText(i int) string {
	words := make([]string, quotaWords)
	for w := range words {
		words[w] = fmt.Sprintf("r%dw%d", i, w)
	}
	return strings.Join(words, " ")
}

// quotaRequest is the reference client's double-encoded request with a
// maxTokens bound.
func quotaRequest(t *testing.T, i int) string {
	obj := map[string]any{
		"messages":        []any{map[string]any{"role": "user", "content": []any{map[string]any{"text": quotaText(i)}}}},
		"modelId":         "echo",
		"conversationId":  "c1",
		"inferenceConfig": map[string]any{"maxTokens": quotaMaxTokens},
	}
	once := must(json.Marshal(obj))
	return string(must(json.Marshal(string(once))))
}

// publishAll sends events from one connection, five per publish, and
// returns the request ids the edge assigned. It runs off the test
// goroutine, so it reports errors instead of failing.
func publishAll(ctx context.Context, c *appsyncClient, ch string, events []string) ([]string, error) {
	var ids []string
	for start := 0; start < len(events); start += 5 {
		id := fmt.Sprintf("p%d", start)
		if err := c.send(ctx, frame{Type: "publish", ID: id, Channel: ch, Events: events[start:min(start+5, len(events))], Authorization: c.auth()}); err != nil {
			return ids, err
		}
		f, err := c.next(ctx)
		if err != nil {
			return ids, err
		}
		if f.Type != "publish_success" || f.ID != id || len(f.Failed) != 0 {
			return ids, fmt.Errorf("publish %s: %+v", id, f)
		}
		for _, s := range f.Successful {
			ids = append(ids, s.Identifier)
		}
	}
	return ids, nil
}

// TestQuotaConcurrentReplicas fires 200 concurrent requests from one user
// whose plan allows L tokens per rolling 24 h, through two meter replicas
// and four chat workers. The settled total never exceeds L plus one
// request's maximum, and every refusal is a clear quota error.
func TestQuotaConcurrentReplicas(t *testing.T) {
	t.Parallel()
	dbURL := postgresSchema(t)
	cfg := quotaConfig(t, dbURL)
	dev := startDev(t, cfg)
	log := testLogger(t)
	runExtra(t, dev, "meter-2", func(nc *nats.Conn) (interface{ Run(context.Context) error }, error) {
		return meter.New(stack.MeterConfig(cfg, log), nc)
	})
	for i := 2; i <= 4; i++ {
		runExtra(t, dev, fmt.Sprintf("chat-%d", i), func(nc *nats.Conn) (interface{ Run(context.Context) error }, error) {
			return chat.New(stack.ChatConfig(cfg.NATS, cfg.Chat, log), nc)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitMeterReplicas(ctx, t, dev, 2)

	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	reader := dialAppSync(ctx, t, dev.EdgeURL(), dev.CAFile(), token)
	if f := reader.subscribe(ctx, "out", "/Outbound-Messages/alice"); f.Type != "subscribe_success" {
		t.Fatalf("subscribe: %+v", f)
	}
	// Four publishers, fifty requests each, all at once.
	const publishers = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  []string
		errs []error
	)
	for p := range publishers {
		c := dialAppSync(ctx, t, dev.EdgeURL(), dev.CAFile(), token)
		var events []string
		for i := p; i < quotaRequests; i += publishers {
			events = append(events, quotaRequest(t, i))
		}
		wg.Go(func() {
			got, err := publishAll(ctx, c, "/Inbound-Messages/alice", events)
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, got...)
			errs = append(errs, err)
		})
	}
	// Read every request's final event while the publishers publish.
	finals := map[string]bus.Event{}
	for len(finals) < quotaRequests {
		f := reader.mustNext(ctx)
		if f.Type != "data" {
			t.Fatalf("unexpected frame: %+v", f)
		}
		var ev bus.Event
		if err := json.Unmarshal([]byte(eventText(t, f)), &ev); err != nil {
			t.Fatalf("not a chat event: %s", f.Event)
		}
		if ev.Metadata != nil || ev.Error != nil {
			if _, dup := finals[ev.RequestID]; dup {
				t.Fatalf("two final events for %s", ev.RequestID)
			}
			finals[ev.RequestID] = ev
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(ids) != quotaRequests {
		t.Fatalf("published %d requests, want %d", len(ids), quotaRequests)
	}

	granted, refused := 0, 0
	for _, id := range ids {
		ev, ok := finals[id]
		switch {
		case !ok:
			t.Fatalf("no final event for request %s", id)
		case ev.Metadata != nil:
			granted++
			if u := ev.Metadata.Usage; u.TotalTokens != quotaPerRequest {
				t.Errorf("request %s used %+v, want %d tokens", id, u, quotaPerRequest)
			}
			checkTokenUsageWindow(t, ev)
		default:
			refused++
			checkQuotaError(t, ev)
		}
	}
	if granted == 0 || refused == 0 {
		t.Fatalf("granted %d, refused %d: the limit was not exercised", granted, refused)
	}

	// The ledger is the settled truth.
	total, rows := waitLedgerTotal(t, dbURL, "alice", granted)
	if rows != granted {
		t.Errorf("ledger holds %d rows, %d requests were answered", rows, granted)
	}
	if total > quotaLimit+quotaPerRequest {
		t.Errorf("settled total %d exceeds L (%d) plus one request's maximum (%d)", total, quotaLimit, quotaPerRequest)
	}
	t.Logf("granted %d, refused %d, settled %d of limit %d", granted, refused, total, quotaLimit)
}

// checkQuotaError asserts a refusal names the limit that refused.
func checkQuotaError(t *testing.T, ev bus.Event) {
	t.Helper()
	e := ev.Error
	if e.Type != bus.ErrTypeQuotaExceeded {
		t.Fatalf("request %s failed with %q, want %q: %s", ev.RequestID, e.Type, bus.ErrTypeQuotaExceeded, e.Message)
	}
	d := e.Details
	if d["scope"] != "user" || d["window"] != "rolling24h" || d["metric"] != "totalTokens" ||
		d["limit"] != float64(quotaLimit) || d["resetsAt"] == "" {
		t.Errorf("refusal details do not name the limit: %+v", d)
	}
	if ra, _ := d["retryAfterSeconds"].(float64); ra < 1 {
		t.Errorf("refusal without retryAfterSeconds: %+v", d)
	}
	if !strings.Contains(e.Message, "rolling24h") || !strings.Contains(e.Message, fmt.Sprint(quotaLimit)) {
		t.Errorf("refusal message does not say which limit: %q", e.Message)
	}
}

// checkTokenUsageWindow asserts the final event reports the user's window.
func checkTokenUsageWindow(t *testing.T, ev bus.Event) {
	t.Helper()
	if ev.TokenUsage == nil {
		t.Fatalf("request %s: final event without tokenUsage", ev.RequestID)
	}
	for _, w := range ev.TokenUsage.Windows {
		if w.Scope == "user" && w.Window == "rolling24h" && w.Metric == "totalTokens" {
			if w.Limit != quotaLimit || w.Used < quotaPerRequest || w.Used > quotaLimit {
				t.Errorf("request %s: window %+v", ev.RequestID, w)
			}
			return
		}
	}
	t.Errorf("request %s: tokenUsage without the rolling window: %+v", ev.RequestID, ev.TokenUsage)
}

// waitMeterReplicas waits until n meter instances answer micro's stats
// request: both replicas serve the same queue group.
func waitMeterReplicas(ctx context.Context, t *testing.T, dev *stack.Dev, n int) {
	t.Helper()
	nc, err := bus.ConnectInProcess(dev.Server(), "probe", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for {
		inbox := nats.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishRequest("$SRV.PING."+meter.ServiceName, inbox, nil); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for seen < n {
			if _, err := sub.NextMsg(time.Second); err != nil {
				break
			}
			seen++
		}
		_ = sub.Unsubscribe()
		if seen >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d meter replicas answer", seen, n)
		}
	}
}

// waitLedgerTotal waits until the ledger holds want rows for sub and
// returns their total tokens and row count.
func waitLedgerTotal(t *testing.T, dsn, sub string, want int) (total int64, rows int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.QueryRow("SELECT count(*), coalesce(sum(total_tokens), 0) FROM usage_records WHERE sub = $1", sub).Scan(&rows, &total)
		if err == nil && rows >= want {
			return total, rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger has %d of %d rows after 30s (last error: %v)", rows, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
