// Command authzbench measures the authz service through its real micro
// endpoints over NATS: verify of a cached dev token, verify of a cached API
// key, check of a channel decision, and verify of Cognito-shaped RS256
// tokens never seen before (cold: signature checked against the cached
// JWKS, served by a local HTTP server). It prints p50/p99/p99.9 latency and
// heap allocations per request of the whole process (client + NATS +
// authz, which share it).
//
//	go run ./bench/authzbench -n 20000 -workers 1,8
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
)

func main() {
	n := flag.Int("n", 20000, "requests per scenario and worker count")
	workersFlag := flag.String("workers", "1,8", "comma-separated concurrent requesters")
	flag.Parse()
	if err := run(*n, *workersFlag); err != nil {
		log.Fatal(err)
	}
}

func run(n int, workersFlag string) error {
	dir, err := os.MkdirTemp("", "authzbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, ReadyTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	svcNC, err := bus.ConnectInProcess(srv, "authz", quiet)
	if err != nil {
		return err
	}
	defer svcNC.Close()

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(rsaKey.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(rsaKey.E)).Bytes()),
		}}})
	}))
	defer idp.Close()
	issuer := idp.URL + "/pool"

	svc, err := authz.New(authz.Config{
		DataDir: dir, SQLitePath: filepath.Join(dir, "ledger.db"), Logger: quiet,
		Issuers: []authz.OIDCIssuer{{IssuerURL: issuer, JWKSURL: idp.URL + "/jwks", Audiences: []string{"client"}, Cognito: true}},
	}, svcNC)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	nc, err := bus.ConnectInProcess(srv, "bench", quiet)
	if err != nil {
		return err
	}
	defer nc.Close()
	subj := bus.NewSubjects("")
	if err := waitReady(nc, subj); err != nil {
		return err
	}
	tok, err := svc.DevIssuer().Mint(authz.DevClaims{Sub: "alice", Tenant: "acme", Groups: []string{"beta"}})
	if err != nil {
		return err
	}
	key, err := bus.Request[bus.KeyCreateResponse](context.Background(), nc, subj.AuthzKeysCreate(), bus.KeyCreateRequest{
		Caller: identity.Identity{Sub: "bench", ChannelID: "bench", Kind: identity.KindService}, Owner: "alice", Namespaces: []string{bus.NamespaceInbound},
	}, nil)
	if err != nil {
		return err
	}
	alice := identity.Identity{Sub: "alice", Issuer: svc.DevIssuer().Issuer(), ChannelID: "alice", Kind: identity.KindUser}

	var workers []int
	for _, w := range strings.Split(workersFlag, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || v < 1 {
			return fmt.Errorf("-workers: %q is not a positive number", w)
		}
		workers = append(workers, v)
	}
	// Cold tokens: distinct jti each, all signed up front.
	sum := 0
	for _, w := range workers {
		sum += w
	}
	cold := make([]string, n*sum)
	coldBase := 0 // each run uses tokens no earlier run verified
	for i := range cold {
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": issuer, "sub": "u", "client_id": "client", "token_use": "access",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": strconv.Itoa(i)})
		t.Header["kid"] = "k1"
		if cold[i], err = t.SignedString(rsaKey); err != nil {
			return err
		}
	}
	scenarios := []struct {
		name string
		do   func(i int) error
	}{
		{"verify cached dev token", func(int) error {
			_, err := bus.Request[bus.VerifyResponse](context.Background(), nc, subj.AuthzVerify(), bus.VerifyRequest{Token: tok}, nil)
			return err
		}},
		{"verify cached API key", func(int) error {
			_, err := bus.Request[bus.VerifyResponse](context.Background(), nc, subj.AuthzVerify(), bus.VerifyRequest{APIKey: key.Secret}, nil)
			return err
		}},
		{"check (allow)", func(int) error {
			r, err := bus.Request[bus.CheckResponse](context.Background(), nc, subj.AuthzCheck(), bus.CheckRequest{Identity: alice, Op: bus.OpPublish, Channel: "/Inbound-Messages/alice"}, nil)
			if err == nil && !r.Allow {
				err = fmt.Errorf("denied: %s", r.Reason)
			}
			return err
		}},
		{"verify cold RS256 token (JWKS cached)", func(i int) error {
			_, err := bus.Request[bus.VerifyResponse](context.Background(), nc, subj.AuthzVerify(), bus.VerifyRequest{Token: cold[coldBase+i]}, nil)
			return err
		}},
	}
	fmt.Printf("%-40s %7s %8s %10s %10s %10s %12s %10s\n", "scenario", "workers", "n", "p50", "p99", "p99.9", "req/s", "allocs/req")
	for _, sc := range scenarios {
		for _, w := range workers {
			if err := measure(sc.name, w, n, sc.do); err != nil {
				return err
			}
			if strings.HasPrefix(sc.name, "verify cold") {
				coldBase += w * n
			}
		}
	}
	return nil
}

func waitReady(nc *nats.Conn, subj bus.Subjects) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := bus.Request[bus.CheckResponse](context.Background(), nc, subj.AuthzCheck(), bus.CheckRequest{Op: bus.OpSubscribe, Channel: "/x"}, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("authz not ready: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// measure runs n requests on each of w workers and prints the latency
// distribution and process-wide allocations per request.
func measure(name string, w, n int, do func(i int) error) error {
	lat := make([][]time.Duration, w)
	var wg sync.WaitGroup
	errc := make(chan error, w)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for g := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, n)
			for i := range n {
				t0 := time.Now()
				if err := do(g*n + i); err != nil {
					errc <- err
					return
				}
				l = append(l, time.Since(t0))
			}
			lat[g] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	total := len(all)
	fmt.Printf("%-40s %7d %8d %10v %10v %10v %12.0f %10.0f\n", name, w, total, q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond),
		q(0.999).Round(time.Microsecond), float64(total)/elapsed.Seconds(), float64(after.Mallocs-before.Mallocs)/float64(total))
	return nil
}
