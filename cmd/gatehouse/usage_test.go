package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestUsageFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	o, err := usageFlags("*", "", "", "", false, false, now)
	if err != nil || !o.query.To.Equal(now) || !o.query.From.Equal(now.Add(-24*time.Hour)) || o.query.Sub != "*" {
		t.Errorf("defaults: %+v %v", o, err)
	}
	o, err = usageFlags("alice", "2026-03-01", "2026-03-02T00:00:00Z", "day", true, false, now)
	if err != nil || !o.query.From.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || o.query.GroupBy != "day" || !o.csv {
		t.Errorf("explicit: %+v %v", o, err)
	}
	for _, tt := range []struct {
		sub, from, to, group string
		csv, json            bool
		want                 string
	}{
		{"*", "soon", "", "", false, false, `--from "soon"`},
		{"*", "", "x", "", false, false, `--to "x"`},
		{"*", "2026-03-02", "2026-03-01", "", false, false, "--to must be after --from"},
		{"*", "", "", "week", false, false, `--group-by "week"`},
		{"*", "", "", "", true, true, "at most one of --csv and --json"},
		{"", "", "", "", false, false, "--sub must name"},
	} {
		if _, err := usageFlags(tt.sub, tt.from, tt.to, tt.group, tt.csv, tt.json, now); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt, err, tt.want)
		}
	}
}

func TestPrintUsage(t *testing.T) {
	t.Parallel()
	rows := []bus.UsageRow{{Group: "alice", Requests: 2, InputTokens: 3, OutputTokens: 4, TotalTokens: 7, CachedRequests: 1, CostMicroUSD: 1_500_042},
		{Group: "b,ob", Requests: 1, TotalTokens: 1, CostMicroUSD: -5}}
	o := usageOptions{query: bus.UsageQuery{GroupBy: "user"}, csv: true}
	var b bytes.Buffer
	if err := printUsage(&b, o, rows); err != nil {
		t.Fatal(err)
	}
	want := "user,requests,input_tokens,output_tokens,total_tokens,cached_requests,cost_usd\nalice,2,3,4,7,1,1.500042\n\"b,ob\",1,0,0,1,0,-0.000005\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	o.csv = false
	if err := printUsage(&b, o, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "total_tokens") || !strings.HasSuffix(strings.TrimSpace(lines[1]), "1.500042") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestUsageCommand runs `gatehouse usage` against a dev stack whose
// meter has recorded usage published to the USAGE stream.
func TestUsageCommand(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.LogLevel = "warn"
	cfg.Edge.Addr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.Meter.FlushInterval = 20 * time.Millisecond
	dev, err := stack.NewDev(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- dev.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("dev: %v", err)
		}
	}()
	select {
	case <-dev.Ready():
	case err := <-errc:
		t.Fatalf("dev: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev not ready")
	}
	nc, err := nats.Connect(dev.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	subj := bus.NewSubjects(cfg.NATS.Prefix)
	for i, sub := range []string{"alice", "alice", "bob"} {
		rec := bus.UsageRecord{RequestID: "r" + string(rune('0'+i)), Sub: sub, Issuer: "iss", ModelID: "echo", InputTokens: 2, OutputTokens: 3,
			TotalTokens: 5, CostMicroUSD: int64(100 * (i + 1)), Cached: i == 1, Status: bus.UsageStatusOK, StartedAt: at, FinishedAt: at}
		data, _ := json.Marshal(rec)
		if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subj.Usage(""), Data: data,
			Header: nats.Header{bus.HeaderMsgID: {rec.RequestID}}}); err != nil {
			t.Fatal(err)
		}
	}
	want := "user,requests,input_tokens,output_tokens,total_tokens,cached_requests,cost_usd\nalice,2,4,6,10,1,0.000300\nbob,1,2,3,5,0,0.000300\n"
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, err := runCmd(t, "usage", "--data", cfg.DataDir, "--nats-url", dev.NATSURL(),
			"--from", "2026-03-01", "--to", "2026-03-02", "--group-by", "user", "--csv")
		if err == nil && out == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse usage: %q %q %v, want %q", out, errOut, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _, err := runCmd(t, "usage", "--nats-url", dev.NATSURL(), "--sub", "bob", "--from", "2026-03-01", "--to", "2026-03-02", "--json")
	if err != nil || !strings.Contains(out, `"totalTokens":5`) || !strings.Contains(out, `"sub":"bob"`) {
		t.Errorf("--json for bob: %q %v", out, err)
	}
}
