package authz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/authz"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// env is one running authz service on its own NATS server.
type env struct {
	nc   *nats.Conn
	svc  *authz.Service
	dev  *authz.DevIssuer
	dir  string
	subj bus.Subjects
}

// start runs an authz service for cfg (DataDir defaults to a temp dir) and
// stops it, checking that Run returns nil, when the test ends.
func start(t testing.TB, cfg authz.Config) *env {
	t.Helper()
	return startOn(t, natstest.Start(t), cfg)
}

// startOn runs an authz service for cfg on srv (replicas share a server).
func startOn(t testing.TB, srv *server.Server, cfg authz.Config) *env {
	t.Helper()
	nc := natstest.Connect(t, srv)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := authz.New(cfg, nc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	e := &env{nc: nc, svc: svc, dev: svc.DevIssuer(), dir: cfg.DataDir, subj: bus.NewSubjects(cfg.Prefix)}
	e.waitReady(t)
	return e
}

// waitReady waits until the endpoints answer (Run subscribes asynchronously).
func (e *env) waitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, err := bus.Request[bus.CheckResponse](ctx, e.nc, e.subj.AuthzCheck(), bus.CheckRequest{Op: bus.OpSubscribe, Channel: "/x"}, nil)
		if err == nil {
			return
		}
		if !errors.Is(err, bus.ErrNoResponders) || ctx.Err() != nil {
			t.Fatalf("authz never became ready: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (e *env) verify(t testing.TB, req bus.VerifyRequest) (bus.VerifyResponse, error) {
	t.Helper()
	return bus.Request[bus.VerifyResponse](context.Background(), e.nc, e.subj.AuthzVerify(), req, nil)
}

func (e *env) check(t testing.TB, req any) (bus.CheckResponse, error) {
	t.Helper()
	return bus.Request[bus.CheckResponse](context.Background(), e.nc, e.subj.AuthzCheck(), req, nil)
}

func (e *env) mint(t testing.TB, c authz.DevClaims) string {
	t.Helper()
	tok, err := e.dev.Mint(c)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// devKey reads the dev issuer's private key the way an operator could.
func devKey(t testing.TB, dir string) *ecdsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, authz.DevIssuerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block in key file")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

// sign signs claims with key using method, setting kid in the header.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// rawToken assembles a token from a header, claims and signature without
// any library, for shapes a library refuses to produce.
func rawToken(t testing.TB, header, claims any, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + sig
}

// validClaims returns claims the test service accepts, for sub.
func (e *env) validClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": e.dev.Issuer(),
		"sub": sub,
		"aud": authz.DefaultAudience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// serviceError asserts err is a service error with code and a description
// containing want.
func serviceError(t testing.TB, err error, code int, want string) {
	t.Helper()
	var se *bus.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("want service error %d %q, got %v", code, want, err)
	}
	if se.Status() != code || !strings.Contains(se.Description, want) {
		t.Fatalf("got %d %q, want %d containing %q", se.Status(), se.Description, code, want)
	}
}
