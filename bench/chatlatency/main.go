// Command chatlatency measures what the OpenAI-compatible HTTP API adds to
// streaming latency. It starts a fake OpenAI-compatible upstream (chunks
// carry the upstream's send time), and an in-process `gatehouse dev` stack
// whose catalog points model "fake" at it, then drives streaming
// requests open-loop at each given rate twice: straight to the upstream,
// and through the edge's POST /v1/chat/completions (edge -> INBOUND ->
// chat -> upstream -> chat -> reply subject -> edge). It reports
// time-to-first-token and per-chunk latency (upstream send -> client
// receive) percentiles for both paths, and the difference.
//
//	go run ./bench/chatlatency -rates 200,500,1000 -duration 5s
//
// -inbound-storage memory puts the INBOUND stream on memory storage
// (nats.inbound_storage); the default is file.
//
// With -breakdown N it first times each bus step of the path (authz
// verify and check, JetStream store, pull, double ack, cache get, meter
// reserve) N times, one at a time (see breakdown.go).
//
// By default everything runs in one process on one machine: the load
// generator, the fake upstream and the whole gateway share the CPU, so the
// numbers are an upper bound of what the gateway adds on a larger box.
// To measure with each part in its own process (pinned to its own cores,
// say), run the fake upstream alone with -serve-upstream, a gateway whose
// catalog points a model at it, and this command with -gateway, -upstream
// and -token (see bench/RESULTS.md, "Separate processes").
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/gcfloor"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

func main() {
	rates := flag.String("rates", "200,500,1000", "request rates (req/s) to measure, comma-separated")
	duration := flag.Duration("duration", 5*time.Second, "how long to send at each rate")
	chunks := flag.Int("chunks", 10, "content chunks per answer")
	gap := flag.Duration("gap", 10*time.Millisecond, "upstream pause between chunks")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured runs to this file")
	steps := flag.Int("breakdown", 0, "before the rates, time each bus step of the chat path this many times, one at a time")
	spans := flag.Bool("spans", false, "record every span in memory and print the stages of the gateway path at each rate (recording adds work per span)")
	inboundStorage := flag.String("inbound-storage", "file", "storage of the INBOUND stream, `file|memory`, as nats.inbound_storage sets it")
	gcFloor := flag.Uint64("gc-heap-floor", gcfloor.DefaultFloor, "GC heap floor in `bytes`, as `gatehouse` sets it (gc_heap_floor); 0 = Go's default GC")
	serveUpstream := flag.String("serve-upstream", "", "only serve the fake upstream on this `address` (e.g. 127.0.0.1:9000, API root http://ADDRESS/v1) until interrupted, to run it as a process of its own")
	gatewayURL := flag.String("gateway", "", "measure the gateway running at this base `URL` (e.g. http://127.0.0.1:8443) instead of starting one in this process; needs -upstream and -token")
	upstreamURL := flag.String("upstream", "", "with -gateway: the API `root` of the fake upstream (a -serve-upstream process, e.g. http://127.0.0.1:9000/v1) the gateway's -model points at")
	bearer := flag.String("token", "", "with -gateway: the bearer `token` or API key to send it")
	model := flag.String("model", "fake", "with -gateway: the model id to ask for")
	insecure := flag.Bool("insecure", false, "with -gateway: accept the gateway's TLS certificate unverified (a development certificate)")
	flag.Parse()
	defer gcfloor.Start(*gcFloor).Stop()

	if *serveUpstream != "" {
		serveOnly(*serveUpstream, *chunks, *gap)
		return
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute,
		DialContext:     (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}, //nolint:gosec // a flag for development certificates
	}}
	if *gatewayURL != "" {
		if *upstreamURL == "" || *bearer == "" || *spans || *steps > 0 {
			log.Fatal("-gateway needs -upstream and -token, and works without -spans and -breakdown (they need the gateway in this process)")
		}
		direct := target{name: "direct", url: strings.TrimRight(*upstreamURL, "/") + "/chat/completions", model: *model}
		gateway := target{name: "gateway", url: strings.TrimRight(*gatewayURL, "/") + "/v1/chat/completions", model: *model, token: *bearer}
		warm(client, direct, gateway)
		measure(client, direct, gateway, *rates, *duration, *cpuProfile, fmt.Sprintf("gateway=%s upstream=%s (separate processes)", *gatewayURL, *upstreamURL), nil)
		return
	}

	var rec *tracetest.SpanRecorder
	if *spans {
		rec = installSpanRecorder()
	}
	up := newUpstream(*chunks, *gap)
	defer up.close()

	dir, err := os.MkdirTemp("", "chatlatency")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.LogLevel = "error"
	cfg.Edge.Addr = "127.0.0.1:0"
	cfg.Edge.PlainHTTP = true
	cfg.Chat.Concurrency = 1024
	cfg.NATS.InboundStorage = *inboundStorage
	cfg.Chat.Providers = []config.ChatProvider{{Name: "fake", Type: "openai", BaseURL: up.url, MaxConcurrent: 4096}}
	cfg.Chat.Models = []config.ChatModel{{ID: "fake", Provider: "fake", MaxTokens: 1024, DefaultMaxTokens: 256}}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dev, err := stack.NewDev(cfg, logger)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- dev.Run(ctx) }()
	select {
	case <-dev.Ready():
	case err := <-errc:
		log.Fatalf("dev stack: %v", err)
	}
	token, err := dev.Issuer().Mint(authz.DevClaims{Sub: "bench"})
	if err != nil {
		log.Fatal(err)
	}

	direct := target{name: "direct", url: up.url + "/chat/completions", model: "fake"}
	gateway := target{name: "gateway", url: dev.EdgeURL() + "/v1/chat/completions", model: "fake", token: token}
	warm(client, direct, gateway)
	if *steps > 0 {
		nc, err := nats.Connect("", nats.InProcessServer(dev.Server()))
		if err != nil {
			log.Fatal(err)
		}
		breakdown(nc, cfg.NATS.Prefix, stack.StreamOptions(cfg.NATS).InboundStorage, token, *steps)
		nc.Close()
	}
	measure(client, direct, gateway, *rates, *duration, *cpuProfile,
		fmt.Sprintf("chunks/answer=%d gap=%s inbound_storage=%s", *chunks, *gap, cfg.NATS.InboundStorage), rec)
	cancel()
	if err := <-errc; err != nil {
		log.Printf("dev stack stopped: %v", err)
	}
}

// warm drives both paths for a while (connections, caches and pools).
func warm(client *http.Client, direct, gateway target) {
	for _, t := range []target{direct, gateway} {
		run(client, t, 100, 2*time.Second)
	}
}

// measure drives each rate at direct and at
// gateway and prints the table (and, with rec, the gateway's stages).
func measure(client *http.Client, direct, gateway target, rates string, duration time.Duration, cpuProfile, setup string, rec *tracetest.SpanRecorder) {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("%s duration/rate=%s\n\n", setup, duration)
	fmt.Println("| rate req/s | path | ok | failed | TTFT p50 | TTFT p99 | chunk p50 | chunk p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || rate < 1 {
			log.Fatalf("bad rate %q", f)
		}
		d := run(client, direct, rate, duration)
		gStart := time.Now()
		g := run(client, gateway, rate, duration)
		gEnd := time.Now()
		d.print(rate, "direct")
		g.print(rate, "gateway")
		fmt.Printf("| %d | **added** | | | %s | %s | %s | %s |\n", rate,
			ms(pct(g.ttft, 50)-pct(d.ttft, 50)), ms(pct(g.ttft, 99)-pct(d.ttft, 99)),
			ms(pct(g.chunk, 50)-pct(d.chunk, 50)), ms(pct(g.chunk, 99)-pct(d.chunk, 99)))
		if rec != nil {
			reportSpans(rec, rate, gStart, gEnd)
			fmt.Println()
		}
	}
}

type target struct{ name, url, model, token string }

// seq numbers requests across runs, so that no prompt repeats and the
// gateway's response cache never answers.
var seq atomic.Int64

type result struct {
	ok, failed  int64
	ttft, chunk []time.Duration
	firstErr    string
}

func (r *result) print(rate int, path string) {
	fmt.Printf("| %d | %s | %d | %d | %s | %s | %s | %s |\n", rate, path, r.ok, r.failed,
		ms(pct(r.ttft, 50)), ms(pct(r.ttft, 99)), ms(pct(r.chunk, 50)), ms(pct(r.chunk, 99)))
	if r.firstErr != "" {
		fmt.Fprintf(os.Stderr, "%s at %d req/s: first error: %s\n", path, rate, r.firstErr)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// run sends streaming requests open-loop at rate for d and waits for them.
func run(client *http.Client, t target, rate int, d time.Duration) *result {
	var mu sync.Mutex
	res := &result{}
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		next := start.Add(time.Duration(i) * interval)
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ttft, chunks, err := stream(client, t, seq.Add(1))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			res.ok++
			res.ttft = append(res.ttft, ttft)
			res.chunk = append(res.chunk, chunks...)
		}()
	}
	wg.Wait()
	slices.Sort(res.ttft)
	slices.Sort(res.chunk)
	return res
}

// stream makes one streaming request and returns its time to first
// content chunk and each chunk's upstream-send-to-receive latency.
func stream(client *http.Client, t target, n int64) (time.Duration, []time.Duration, error) {
	body := fmt.Sprintf(`{"model":%q,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"request %d"}]}`, t.model, n)
	req, err := http.NewRequest(http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var ttft time.Duration
	var lat []time.Duration
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			done = true
			break
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return 0, nil, err
		}
		if c.Error != nil {
			return 0, nil, fmt.Errorf("stream error: %s", c.Error.Message)
		}
		if len(c.Choices) == 0 || c.Choices[0].Delta.Content == "" {
			continue
		}
		now := time.Now()
		if ttft == 0 {
			ttft = now.Sub(began)
		}
		sent, err := strconv.ParseInt(strings.TrimSpace(c.Choices[0].Delta.Content), 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("chunk %q is not a send time", c.Choices[0].Delta.Content)
		}
		lat = append(lat, now.Sub(time.Unix(0, sent)))
	}
	if err := sc.Err(); err != nil {
		return 0, nil, err
	}
	if !done || ttft == 0 {
		return 0, nil, fmt.Errorf("stream ended early after %d chunks", len(lat))
	}
	return ttft, lat, nil
}
