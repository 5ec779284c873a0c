package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

// chatRoundTrip does what the reference browser client does: connect as
// sub, subscribe to its outbound channel, publish the double-encoded request
// to its inbound channel, and read the streamed answer. It checks the event
// sequence and returns the events and the request id.
func chatRoundTrip(ctx context.Context, t *testing.T, baseURL, caFile, token, sub string) ([]bus.Event, string) {
	t.Helper()
	c := dialAppSync(ctx, t, baseURL, caFile, token)
	if f := c.subscribe(ctx, "sub-1", "/Outbound-Messages/"+sub); f.Type != "subscribe_success" || f.ID != "sub-1" {
		t.Fatalf("subscribe: %+v", f)
	}
	f := c.publish(ctx, "pub-1", "/Inbound-Messages/"+sub, referenceRequest(t, "hello there", "echo", "c1"))
	if f.Type != "publish_success" || f.ID != "pub-1" || len(f.Successful) != 1 || len(f.Failed) != 0 {
		t.Fatalf("publish: %+v", f)
	}
	requestID := f.Successful[0].Identifier
	if requestID == "" || f.Successful[0].Index != 0 {
		t.Fatalf("publish_success without identifier: %+v", f)
	}
	events := collectAnswer(ctx, t, c, "sub-1")
	checkAnswer(t, events, requestID, "hello there")
	return events, requestID
}

// checkAnswer asserts the DESIGN.md section 3 event sequence.
func checkAnswer(t *testing.T, events []bus.Event, requestID, want string) {
	t.Helper()
	if len(events) < 6 {
		t.Fatalf("want messageStart, >=2 deltas, contentBlockStop, messageStop, metadata; got %d events: %+v", len(events), events)
	}
	var text strings.Builder
	deltas := 0
	for i, ev := range events {
		if ev.ConversationID != "c1" {
			t.Errorf("event %d has conversationId %q, want c1", i, ev.ConversationID)
		}
		if ev.RequestID != requestID {
			t.Errorf("event %d has requestId %q, want %q", i, ev.RequestID, requestID)
		}
		if ev.Seq != i {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		if ev.Error != nil {
			t.Fatalf("error event: %+v", ev.Error)
		}
		if ev.ContentBlockDelta != nil {
			deltas++
			text.WriteString(ev.ContentBlockDelta.Delta.Text)
		}
	}
	if events[0].MessageStart == nil || events[0].MessageStart.Role != "assistant" {
		t.Errorf("first event is not messageStart(assistant): %+v", events[0])
	}
	if deltas < 2 {
		t.Errorf("want at least two contentBlockDelta events, got %d", deltas)
	}
	if text.String() != want {
		t.Errorf("streamed text %q, want %q", text.String(), want)
	}
	n := len(events)
	if events[n-3].ContentBlockStop == nil {
		t.Errorf("third-to-last event is not contentBlockStop: %+v", events[n-3])
	}
	if events[n-2].MessageStop == nil || events[n-2].MessageStop.StopReason != "end_turn" {
		t.Errorf("second-to-last event is not messageStop(end_turn): %+v", events[n-2])
	}
	md := events[n-1]
	if md.Metadata == nil || md.TokenUsage == nil {
		t.Fatalf("last event lacks metadata or tokenUsage: %+v", md)
	}
	u := md.Metadata.Usage
	if u.InputTokens <= 0 || u.OutputTokens != int64(deltas) || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("usage %+v inconsistent with %d deltas", u, deltas)
	}
	if md.TokenUsage.Request != u {
		t.Errorf("tokenUsage.request %+v != metadata.usage %+v", md.TokenUsage.Request, u)
	}
}

func checkLedger(t *testing.T, rows []ledgerRow, events []bus.Event, sub string) {
	t.Helper()
	if len(rows) != 1 {
		t.Fatalf("want exactly one ledger row, got %d: %+v", len(rows), rows)
	}
	u := events[len(events)-1].Metadata.Usage
	r := rows[0]
	if r.InputTokens != u.InputTokens || r.OutputTokens != u.OutputTokens || r.TotalTokens != u.TotalTokens {
		t.Errorf("ledger tokens %+v differ from streamed usage %+v", r, u)
	}
	if r.Sub != sub || r.ModelID != "echo" || r.Status != bus.UsageStatusOK {
		t.Errorf("ledger row %+v", r)
	}
}

func TestRoundTripSQLite(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, "")
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	events, requestID := chatRoundTrip(ctx, t, dev.EdgeURL(), dev.CAFile(), token, "alice")
	rows := waitLedgerRows(t, "sqlite", cfg.SQLitePath(), requestID)
	checkLedger(t, rows, events, "alice")
	if n := countLedgerRows(t, "sqlite", cfg.SQLitePath()); n != 1 {
		t.Errorf("ledger holds %d rows, want 1", n)
	}
}

func TestRoundTripPostgres(t *testing.T) {
	t.Parallel()
	dbURL := postgresSchema(t)
	cfg := devConfig(t, dbURL)
	dev := startDev(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	token := must(dev.Issuer().Mint(authz.DevClaims{Sub: "alice"}))
	events, requestID := chatRoundTrip(ctx, t, dev.EdgeURL(), dev.CAFile(), token, "alice")
	rows := waitLedgerRows(t, "pgx", dbURL, requestID)
	checkLedger(t, rows, events, "alice")
	if n := countLedgerRows(t, "pgx", dbURL); n != 1 {
		t.Errorf("ledger holds %d rows, want 1", n)
	}
}
