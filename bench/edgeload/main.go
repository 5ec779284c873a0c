// Command edgeload is the edge's load tool. It drives a running edge (for
// example `gatehouse dev`) over the AppSync Events WebSocket protocol and
// reports what the issue asks to measure:
//
//	edgeload idle    opens N sockets (connection_init, one subscription each)
//	                 and reports the server's RSS growth per idle socket.
//	edgeload fanout  opens N subscribers on one channel, publishes M events
//	                 to it through NATS and reports delivered messages per
//	                 second and publish->data latency percentiles.
//
// Start the server with limits raised and NATS exposed, mint a token, then
// run a mode (see bench/RESULTS.md for the exact commands used):
//
//	ulimit -n 1048576   # needs the hard limit; sockets = file descriptors
//	GATEHOUSE_EDGE__MAX_CONNECTIONS=200000 \
//	GATEHOUSE_EDGE__MAX_CONNECTIONS_PER_IDENTITY=200000 \
//	  gatehouse dev --data /tmp/ghload --nats-listen 127.0.0.1:4333 &
//	edgeload idle -url https://localhost:8443 -ca /tmp/ghload/tls/ca.pem \
//	  -token "$(gatehouse token --data /tmp/ghload --sub alice)" -pid $! -n 10000 \
//	  -src 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
//
// Each source address gives about 28k ephemeral ports, so use several
// 127.0.0.x addresses beyond that. The clients run in this process, so on a
// small machine they compete with the server for CPU; the numbers are for
// the whole machine.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: edgeload idle|fanout [flags]  (edgeload <mode> -h for flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "idle":
		err = runIdle(os.Args[2:])
	case "fanout":
		err = runFanout(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want idle or fanout)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgeload:", err)
		os.Exit(1)
	}
}

// common holds the connection flags of every mode.
type common struct {
	url, ca, token, sub, src string
	dialers                  int
	timeout                  time.Duration
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "https://localhost:8443", "edge base `URL` (https or http)")
	fs.StringVar(&c.ca, "ca", "", "PEM `file` of the CA to trust (the dev CA: <data>/tls/ca.pem)")
	fs.StringVar(&c.token, "token", "", "bearer `token` of the caller (gatehouse token --sub NAME)")
	fs.StringVar(&c.sub, "sub", "alice", "the caller's channel id: sockets subscribe to /Outbound-Messages/`SUB`")
	fs.StringVar(&c.src, "src", "127.0.0.1", "comma-separated source `addresses` to spread sockets over")
	fs.IntVar(&c.dialers, "dialers", 64, "concurrent dials")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "bound of each handshake step")
}

// client opens sockets round-robin over the source addresses.
type client struct {
	common
	wsURL   string
	clients []*http.Client
	next    atomic.Uint64
}

func newClient(c common) (*client, error) {
	if c.token == "" {
		return nil, errors.New("-token is required")
	}
	var tlsCfg *tls.Config
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.ca)
		}
		tlsCfg = &tls.Config{RootCAs: pool, ClientSessionCache: tls.NewLRUClientSessionCache(1024)}
	}
	cl := &client{common: c}
	cl.wsURL = strings.Replace(strings.Replace(strings.TrimRight(c.url, "/"), "https://", "wss://", 1), "http://", "ws://", 1) + "/event/realtime"
	for _, s := range strings.Split(c.src, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return nil, fmt.Errorf("-src: %q is not an IP address", s)
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: c.timeout}
		cl.clients = append(cl.clients, &http.Client{Transport: &http.Transport{
			DialContext:       d.DialContext,
			TLSClientConfig:   tlsCfg,
			ForceAttemptHTTP2: false,
			MaxIdleConns:      -1,
		}})
	}
	return cl, nil
}

func (cl *client) protocols() []string {
	hdr, _ := json.Marshal(map[string]string{"host": "localhost", "Authorization": cl.token})
	return []string{"aws-appsync-event-ws", "header-" + base64.RawURLEncoding.EncodeToString(hdr)}
}

// open dials one socket, completes connection_init and subscribes as id.
func (cl *client) open(ctx context.Context, id string) (*websocket.Conn, error) {
	hc := cl.clients[cl.next.Add(1)%uint64(len(cl.clients))]
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, cl.wsURL, &websocket.DialOptions{HTTPClient: hc, Subprotocols: cl.protocols()})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	fail := func(err error) (*websocket.Conn, error) {
		_ = ws.CloseNow()
		return nil, err
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`)); err != nil {
		return fail(err)
	}
	if err := expect(ctx, ws, "connection_ack"); err != nil {
		return fail(err)
	}
	msg := fmt.Sprintf(`{"type":"subscribe","id":%q,"channel":"/Outbound-Messages/%s"}`, id, cl.sub)
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return fail(err)
	}
	if err := expect(ctx, ws, "subscribe_success"); err != nil {
		return fail(err)
	}
	return ws, nil
}

func expect(ctx context.Context, ws *websocket.Conn, typ string) error {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		var f struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &f)
		switch f.Type {
		case typ:
			return nil
		case "ka":
			continue
		}
		return fmt.Errorf("want %s, got %s", typ, b)
	}
}

// openMany opens n sockets with cl.dialers workers and reports progress.
func (cl *client) openMany(ctx context.Context, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range cl.dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ws, err := cl.open(ctx, "s"+strconv.Itoa(i))
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("socket %d: %w", i, err)
					}
					errMu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
				conns[i] = ws
				if (i+1)%5000 == 0 {
					fmt.Fprintf(os.Stderr, "  %d sockets open (%.0f/s)\n", i+1, float64(i+1)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		if ws != nil {
			_ = ws.CloseNow()
		}
	}
}

// rssKB reads VmRSS of process pid in KiB.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/pid/status")
}

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	var c common
	c.flags(fs)
	counts := fs.String("n", "10000", "comma-separated socket `counts` to measure in turn (each on a fresh set)")
	pid := fs.Int("pid", 0, "`pid` of the server process whose RSS is measured (required)")
	settle := fs.Duration("settle", 3*time.Second, "pause before each RSS reading")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid == 0 {
		return errors.New("-pid is required")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ctx := context.Background()
	fmt.Printf("%-8s %-12s %-12s %-12s %s\n", "sockets", "rss_before", "rss_after", "per_socket", "open_rate")
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-n: bad count %q", s)
		}
		time.Sleep(*settle)
		before, err := rssKB(*pid)
		if err != nil {
			return err
		}
		start := time.Now()
		conns, err := cl.openMany(ctx, n)
		if err != nil {
			return err
		}
		rate := float64(n) / time.Since(start).Seconds()
		time.Sleep(*settle)
		after, err := rssKB(*pid)
		if err != nil {
			closeAll(conns)
			return err
		}
		fmt.Printf("%-8d %-12s %-12s %-12s %.0f/s\n", n, kib(before), kib(after),
			fmt.Sprintf("%.1f KiB", float64(after-before)/float64(n)), rate)
		closeAll(conns)
		runtime.GC()
	}
	return nil
}

func kib(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

func runFanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var c common
	c.flags(fs)
	n := fs.Int("n", 1000, "subscriber `sockets` (all on /Outbound-Messages/SUB)")
	m := fs.Int("m", 2000, "`events` to publish")
	natsURL := fs.String("nats", "nats://127.0.0.1:4333", "NATS `URL` of the server (gatehouse dev --nats-listen)")
	prefix := fs.String("prefix", "gh", "subject `prefix`")
	window := fs.Int("window", 64, "most `events` in flight (published, not yet delivered to every subscriber); keep it below the send queue length")
	rate := fs.Float64("rate", 0, "publish at most this many `events/s` (0: as fast as the window allows); use a modest rate to measure latency without queueing")
	size := fs.Int("size", 100, "payload `bytes` per event")
	pid := fs.Int("pid", 0, "`pid` of the server process: also report its CPU time while delivering (Linux /proc)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, nats.Name("edgeload"))
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns, err := cl.openMany(ctx, *n)
	if err != nil {
		return err
	}
	defer closeAll(conns)

	var delivered, disconnects atomic.Int64
	lat := make([][]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, ws := range conns {
		lat[i] = make([]time.Duration, 0, *m)
		wg.Go(func() {
			for int64(len(lat[i])) < int64(*m) {
				_, b, err := ws.Read(ctx)
				if err != nil {
					disconnects.Add(1)
					return
				}
				t, ok := sentAt(b)
				if !ok {
					continue // ka
				}
				lat[i] = append(lat[i], time.Since(time.Unix(0, t)))
				delivered.Add(1)
			}
		})
	}
	pad := strings.Repeat("x", max(0, *size-40))
	subject := *prefix + ".ch.Outbound-Messages." + cl.sub
	var tick *time.Ticker
	if *rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / *rate))
		defer tick.Stop()
	}
	cpuBefore, _ := cpuSeconds(*pid)
	start := time.Now()
	for k := 0; k < *m; k++ {
		for int64(k)*int64(len(conns))-delivered.Load() > int64(*window)*int64(len(conns)) {
			if disconnects.Load() > 0 {
				return fmt.Errorf("%d subscribers were disconnected (slow consumer?)", disconnects.Load())
			}
			time.Sleep(50 * time.Microsecond)
		}
		if tick != nil {
			<-tick.C
		}
		payload := `{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"pad":"` + pad + `"}`
		if err := nc.Publish(subject, []byte(payload)); err != nil {
			return err
		}
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cancel()
		<-done
		return fmt.Errorf("only %d of %d deliveries after 2 minutes", delivered.Load(), *n**m)
	}
	elapsed := time.Since(start)
	cpuAfter, cpuErr := cpuSeconds(*pid)
	if d := disconnects.Load(); d > 0 {
		return fmt.Errorf("%d subscribers were disconnected", d)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	total := delivered.Load()
	fmt.Printf("subscribers=%d events=%d delivered=%d elapsed=%s rate=%.0f msgs/s p50=%s p99=%s max=%s\n",
		len(conns), *m, total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), all[len(all)-1].Round(time.Microsecond))
	if *pid != 0 {
		if cpuErr != nil {
			return cpuErr
		}
		cpu := cpuAfter - cpuBefore
		fmt.Printf("server_cpu=%.2fs (%.0f%% of one core) msgs_per_server_cpu_second=%.0f\n",
			cpu, 100*cpu/elapsed.Seconds(), float64(total)/cpu)
	}
	return nil
}

// cpuSeconds returns the user+system CPU time of process pid from
// /proc/pid/stat (0 for pid 0).
func cpuSeconds(pid int) (float64, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after ")".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/pid/stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return (utime + stime) / ticks, nil
}

// sentAt extracts the publish time from a data frame whose event is the
// JSON string of {"t":<unix nanos>,...}.
func sentAt(frame []byte) (int64, bool) {
	const key = `{\"t\":`
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := frame[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	t, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return t, err == nil
}
