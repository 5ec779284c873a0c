// Command meterbench measures the meter: reserve+settle latency through
// the real micro endpoints with quota state in JetStream KV, and the
// sustained rate at which usage records published to the USAGE stream
// reach the Postgres ledger (partitioned, with hourly rollups).
//
//	go run ./bench/meterbench -mode quota -pairs 20000 -workers 1,8
//	go run ./bench/meterbench -mode quota -pairs 20000 -rates 1000,4000
//	go run ./bench/meterbench -mode ledger -records 200000 -batch 5000 -replicas 1,2
//
// It starts an embedded NATS server and meter replicas in-process, on a
// schema of its own in the Postgres at -db (dropped at the end). The load
// generator, NATS, the meter and Postgres share one machine, so the
// numbers are what this box does end to end, not the meter alone.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/internal/stack"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/gcfloor"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == serveNATSFlag {
		serveNATS(os.Args[2])
		return
	}
	mode := flag.String("mode", "both", "quota, ledger or both")
	db := flag.String("db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "Postgres `url` (a schema of its own is created and dropped)")
	pairs := flag.Int("pairs", 20000, "quota: reserve+settle pairs per run")
	workers := flag.String("workers", "1,8", "quota: concurrent callers per run, comma-separated")
	rates := flag.String("rates", "", "quota: instead of -workers, start pairs at these rates (pairs/s, comma-separated) whatever the answers do; users default to 100")
	users := flag.Int("users", 0, "quota: distinct users (0 = one per worker; 1 = everyone contends on one key)")
	records := flag.Int("records", 200000, "ledger: usage records per run")
	batch := flag.Int("batch", 5000, "ledger: meter batch size")
	replicas := flag.String("replicas", "1,2", "ledger: meter replicas per run, comma-separated")
	ledgerProfile := flag.String("ledger-cpuprofile", "", "ledger: write a CPU profile of the drains (meters, embedded NATS) to `file`")
	writers := flag.Int("writers", 0, "ledger: concurrent ledger writers per replica (0 = the meter default)")
	ledgerRate := flag.Int("ledger-rate", 0, "ledger: instead of draining a backlog, publish at this many records/s while the meters write (live), -records in all")
	plans := flag.Bool("plans", true, "quota: enforce a plan (false: no plans, the bare micro round trips as a baseline)")
	cpuProfile := flag.String("cpuprofile", "", "quota: write a CPU profile of the quota runs to `file`")
	flag.BoolVar(&natsChild, "nats-process", false, "run NATS as a separate process reached over loopback TCP (the production shape) instead of in this process")
	gcFloor := flag.Uint64("gc-heap-floor", gcfloor.DefaultFloor, "GC heap floor in `bytes`, as `gatehouse` sets it (gc_heap_floor); 0 = Go's default GC")
	flag.Parse()
	defer gcfloor.Start(*gcFloor).Stop()

	if *mode == "quota" || *mode == "both" {
		stopProfile := startCPUProfile(*cpuProfile)
		if *rates != "" {
			for _, rate := range ints(*rates) {
				benchQuotaRate(*db, rate, *pairs, *users, *plans)
			}
		} else {
			for _, w := range ints(*workers) {
				benchQuota(*db, *pairs, w, *users, *plans)
			}
		}
		stopProfile()
	}
	if *mode == "ledger" || *mode == "both" {
		for _, r := range ints(*replicas) {
			if *ledgerRate > 0 {
				benchLedgerLive(*db, *ledgerRate, *records, *batch, r, *writers)
			} else {
				benchLedger(*db, *records, *batch, r, *writers, *ledgerProfile)
			}
		}
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out
}

// natsChild: -nats-process.
var natsChild bool

// env is one NATS server (embedded, or a child process with
// -nats-process) and a fresh Postgres schema.
type env struct {
	srv    *server.Server
	child  *natsProcess
	dir    string
	dbURL  string
	schema string
	base   string
	// streams are the options of the streams every process of the bench
	// declares (the producer and each meter replica): gatehouse's default
	// configuration.
	streams bus.StreamOptions
}

func newEnv(base string) *env {
	dir, err := os.MkdirTemp("", "meterbench")
	if err != nil {
		log.Fatal(err)
	}
	var (
		srv   *server.Server
		child *natsProcess
	)
	if natsChild {
		child = startNATSProcess(dir)
	} else if srv, err = bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1, ReadyTimeout: 10 * time.Second}); err != nil {
		log.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "gh_bench_" + hex.EncodeToString(b[:])
	execSQL(base, "CREATE SCHEMA "+schema)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return &env{srv: srv, child: child, dir: dir, dbURL: base + sep + "search_path=" + schema, schema: schema, base: base,
		streams: stack.StreamOptions(config.Default().NATS)}
}

func (e *env) close() {
	if e.child != nil {
		e.child.stop()
	} else {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	_ = os.RemoveAll(e.dir)
	execSQL(e.base, "DROP SCHEMA "+e.schema+" CASCADE")
}

func execSQL(url, sql string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		log.Fatalf("postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		log.Fatalf("postgres: %s: %v", sql, err)
	}
}

func (e *env) conn(name string) *nats.Conn {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	if e.child != nil {
		nc, err := bus.Connect(context.Background(), e.child.url, name, discard)
		if err != nil {
			log.Fatal(err)
		}
		return nc
	}
	nc, err := bus.ConnectInProcess(e.srv, name, discard)
	if err != nil {
		log.Fatal(err)
	}
	return nc
}

// checkLedger stops the bench unless the ledger holds exactly records
// usage records and its hourly rollups count exactly that many requests.
func (e *env) checkLedger(records int) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM usage_records").Scan(&n); err != nil || n != records {
		log.Fatalf("ledger holds %d records after every one was acknowledged, want %d (%v)", n, records, err)
	}
	var rolled int64
	if err := c.QueryRow(ctx, "SELECT sum(requests) FROM usage_hourly").Scan(&rolled); err != nil || rolled != int64(records) {
		log.Fatalf("rollups hold %d requests, want %d (%v)", rolled, records, err)
	}
}

// producer connects a usage producer and declares the streams (as chat
// does before it publishes); call the returned func to close it.
func (e *env) producer() (jetstream.JetStream, bus.Subjects, func()) {
	pub := e.conn("producer")
	js, err := jetstream.New(pub)
	if err != nil {
		log.Fatal(err)
	}
	subj := bus.NewSubjects("")
	if err := bus.EnsureStreams(context.Background(), js, subj, e.streams); err != nil {
		log.Fatal(err)
	}
	return js, subj, pub.Close
}

// startMeters runs n meter replicas until the returned stop is called.
func (e *env) startMeters(n int, cfg meter.Config) (stop func()) {
	cfg.Streams = e.streams
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var conns []*nats.Conn
	for i := range n {
		nc := e.conn(fmt.Sprintf("meter-%d", i))
		conns = append(conns, nc)
		svc, err := meter.New(cfg, nc)
		if err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			if err := svc.Run(ctx); err != nil {
				log.Fatalf("meter: %v", err)
			}
		})
	}
	probe := e.conn("probe")
	defer probe.Close()
	for {
		_, err := bus.Request[bus.ReserveResponse](context.Background(), probe, bus.NewSubjects("").MeterReserve(), bus.ReserveRequest{}, nil)
		if _, ok := err.(*bus.ServiceError); ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		cancel()
		wg.Wait()
		for _, nc := range conns {
			nc.Close()
		}
	}
}

// startCPUProfile writes a CPU profile to path ("" profiles nothing)
// until the returned stop is called.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

// quiet discards logs unless MBENCH_DEBUG is set.
func quiet() *slog.Logger {
	if os.Getenv("MBENCH_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// quotaRig is one meter replica with a plan (or none) on a fresh NATS
// server and schema, and a caller connection.
type quotaRig struct {
	e    *env
	stop func()
	nc   *nats.Conn
	subj bus.Subjects
}

func newQuotaRig(db string, plans bool) *quotaRig {
	e := newEnv(db)
	huge := int64(1) << 50
	cfg := meter.Config{Logger: quiet(), DatabaseURL: e.dbURL}
	if plans {
		cfg.Quota = meter.QuotaConfig{
			Plans: map[string]meter.Plan{"bench": {
				Rolling24h: meter.Limits{TotalTokens: huge}, Day: meter.Limits{TotalTokens: huge},
				Month: meter.Limits{SpendMicroUSD: huge}, Minute: meter.Limits{Requests: huge},
			}},
			Defaults: meter.Assignment{User: "bench"},
		}
	}
	return &quotaRig{e: e, stop: e.startMeters(1, cfg), nc: e.conn("callers"), subj: bus.NewSubjects("")}
}

func (r *quotaRig) close() {
	r.nc.Close()
	r.stop()
	r.e.close()
}

// pair is one reserve and its settle, as chat does them around a model call.
func (r *quotaRig) pair(ctx context.Context, who identity.Identity, id string) {
	res, err := bus.Request[bus.ReserveResponse](ctx, r.nc, r.subj.MeterReserve(), bus.ReserveRequest{RequestID: id, Identity: who, ModelID: "m", InputTokens: 100, MaxOutputTokens: 500, MaxCostMicroUSD: 900}, nil)
	if err != nil || !res.Granted {
		log.Fatalf("reserve: %+v %v", res, err)
	}
	if _, err := bus.Request[bus.SettleResponse](ctx, r.nc, r.subj.MeterSettle(), bus.SettleRequest{RequestID: id, Identity: who, ModelID: "m", Usage: bus.Usage{InputTokens: 100, OutputTokens: 200, TotalTokens: 300}, CostMicroUSD: 400}, nil); err != nil {
		log.Fatalf("settle: %v", err)
	}
}

func benchUser(i int) identity.Identity {
	return identity.Identity{Sub: fmt.Sprintf("user-%d", i), Issuer: "bench", ChannelID: "c"}
}

// report prints percentiles of lats (sorted here) and the achieved rate.
func report(label string, lats []time.Duration, elapsed time.Duration) {
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(float64(len(lats))*p))] }
	fmt.Printf("%s pairs=%d  p50=%s p90=%s p99=%s max=%s  %.0f pairs/s\n",
		label, len(lats), pct(0.50), pct(0.90), pct(0.99), lats[len(lats)-1], float64(len(lats))/elapsed.Seconds())
}

// benchQuota times reserve+settle pairs from w concurrent callers, each
// sending its next pair when the last one is answered (closed loop: with
// w above the cores, latency is w divided by throughput).
func benchQuota(db string, pairs, w, users int, plans bool) {
	r := newQuotaRig(db, plans)
	defer r.close()
	if users == 0 {
		users = w
	}
	var (
		mu   sync.Mutex
		lats = make([]time.Duration, 0, pairs)
		wg   sync.WaitGroup
	)
	per := pairs / w
	start := time.Now()
	for i := range w {
		wg.Go(func() {
			who := benchUser(i % users)
			local := make([]time.Duration, 0, per)
			ctx := context.Background()
			for j := range per {
				t0 := time.Now()
				r.pair(ctx, who, fmt.Sprintf("w%d-%d", i, j))
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	report(fmt.Sprintf("quota reserve+settle: plans=%t workers=%d users=%d", plans, w, users), lats, time.Since(start))
}

// benchQuotaRate starts pairs at a fixed rate whatever the answers do
// (open loop), spread over users. Each pair is timed from when it was
// sent: a slow answer never delays the next start, so stalls still show,
// but the pacer's own lateness (Go timers on Linux wake up to a
// millisecond late) does not count as the meter's.
func benchQuotaRate(db string, rate, pairs, users int, plans bool) {
	r := newQuotaRig(db, plans)
	defer r.close()
	if users == 0 {
		users = 100
	}
	lats := make([]time.Duration, pairs)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range pairs {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			t0 := time.Now()
			r.pair(context.Background(), benchUser(i%users), fmt.Sprintf("r%d", i))
			lats[i] = time.Since(t0)
		})
	}
	wg.Wait()
	report(fmt.Sprintf("quota reserve+settle: plans=%t rate=%d/s users=%d", plans, rate, users), lats, time.Since(start))
}

// publishRecord publishes usage record number i (1,000 users × 3 models
// × 10 tenants, finished over the two hours before now) asynchronously.
func publishRecord(js jetstream.JetStream, subj bus.Subjects, now time.Time, i int) {
	r := bus.UsageRecord{
		RequestID: fmt.Sprintf("req-%08d", i), Sub: fmt.Sprintf("user-%d", i%1000), Issuer: "https://issuer",
		Tenant: fmt.Sprintf("tenant-%d", i%10), ChannelID: "c", ModelID: []string{"m1", "m2", "m3"}[i%3], Provider: "p",
		InputTokens: 100, OutputTokens: 200, TotalTokens: 300, CostMicroUSD: 42, Status: bus.UsageStatusOK,
		StartedAt: now.Add(-time.Second), FinishedAt: now.Add(-time.Duration(i%7200) * time.Second),
	}
	data, _ := json.Marshal(r)
	if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj.Usage(r.Tenant), Data: data, Header: nats.Header{bus.HeaderMsgID: {r.RequestID}}}); err != nil {
		log.Fatal(err)
	}
}

// benchLedger publishes records to USAGE and times until the ledger holds
// them all.
func benchLedger(db string, records, batch, replicas, writers int, cpuprofile string) {
	e := newEnv(db)
	defer e.close()
	// Publish first, then start the meters: the stream is a backlog the
	// ledger drains as fast as it can (sustained write rate).
	js, subj, closeProducer := e.producer()
	defer closeProducer()
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range records {
		publishRecord(js, subj, now, i)
		if i%10000 == 9999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()

	defer startCPUProfile(cpuprofile)()
	start := time.Now()
	stop := e.startMeters(replicas, meter.Config{Logger: quiet(), DatabaseURL: e.dbURL, BatchSize: batch, FlushInterval: 50 * time.Millisecond, LedgerWriters: writers})
	defer stop()
	// Done when the ledger consumer has every record acknowledged. Meter
	// acknowledges a record only after its batch committed, so this is the
	// moment Postgres holds them all; asking NATS (not count(*) on a growing
	// table every few ms) keeps the poll's cost off the database being
	// measured. The count is checked once afterwards. "Sustained" counts
	// from the first acknowledged batch (the meters are up and writing) to
	// the last.
	var firstAt time.Time
	var firstAcked uint64
	var firstCPU cpuSample
	for {
		ci, err := js.Consumer(ctx, subj.StreamUsage(), bus.ConsumerLedger)
		if err == nil {
			info, err := ci.Info(ctx)
			if err != nil {
				log.Fatal(err)
			}
			if firstAt.IsZero() && info.AckFloor.Stream > 0 {
				firstAt, firstAcked, firstCPU = time.Now(), info.AckFloor.Stream, sampleCPU()
			}
			if info.AckFloor.Stream >= uint64(records) && info.NumAckPending == 0 && info.NumPending == 0 {
				break
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			log.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	lastCPU := sampleCPU()
	e.checkLedger(records)
	sustained := 0.0
	if d := start.Add(elapsed).Sub(firstAt); !firstAt.IsZero() && firstAcked < uint64(records) {
		sustained = float64(uint64(records)-firstAcked) / d.Seconds()
	}
	// CPU per record over the sustained window: this process (meters and
	// embedded NATS) and the local Postgres. Less sensitive to other load
	// on the box than the rate.
	goCPU, pgCPU := perRecord(firstCPU, lastCPU, uint64(records)-firstAcked)
	fmt.Printf("ledger: replicas=%d writers=%d batch=%d records=%d  %s  %.0f records/s (includes meter start-up)  sustained %.0f records/s  cpu/record: meter+nats %.1f µs, postgres %.1f µs\n",
		replicas, writers, batch, records, elapsed.Round(time.Millisecond), float64(records)/elapsed.Seconds(), sustained, goCPU, pgCPU)
}
