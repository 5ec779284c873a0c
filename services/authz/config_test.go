package authz_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/natstest"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  authz.Config
		want string // "" means valid
	}{
		{"minimal", authz.Config{DataDir: dir}, ""},
		{"everything set", authz.Config{DataDir: dir, Prefix: "a.b", DevIssuerURL: "http://127.0.0.1:8080/dev", Audience: "x", ClockSkew: time.Minute, Policy: authz.DefaultPolicy()}, ""},
		{"no data dir", authz.Config{}, "DataDir is required"},
		{"bad prefix", authz.Config{DataDir: dir, Prefix: "gh.>"}, "prefix"},
		{"relative issuer", authz.Config{DataDir: dir, DevIssuerURL: "/dev"}, "absolute http or https URL"},
		{"issuer with query", authz.Config{DataDir: dir, DevIssuerURL: "https://x/dev?a=b"}, "query"},
		{"negative skew", authz.Config{DataDir: dir, ClockSkew: -time.Second}, "ClockSkew"},
		{"huge skew", authz.Config{DataDir: dir, ClockSkew: time.Hour}, "ClockSkew"},
		{"bad policy", authz.Config{DataDir: dir, Policy: authz.Policy{Namespaces: map[string]authz.NamespacePolicy{"a.b": {}}}}, "namespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, authz.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	ns := func(p authz.NamespacePolicy) authz.Policy {
		return authz.Policy{Namespaces: map[string]authz.NamespacePolicy{"Room": p}}
	}
	cases := []struct {
		name string
		p    authz.Policy
		want string
	}{
		{"default", authz.DefaultPolicy(), ""},
		{"empty", authz.Policy{}, ""},
		{"every rule", ns(authz.NamespacePolicy{Publish: []authz.Rule{authz.RuleOwner, authz.RuleService, authz.GroupRule("a")}, Subscribe: []authz.Rule{authz.RuleAuthenticated}}), ""},
		{"lone deny", ns(authz.NamespacePolicy{Subscribe: []authz.Rule{authz.RuleDeny}}), ""},
		{"bad namespace", authz.Policy{Namespaces: map[string]authz.NamespacePolicy{"-x": {}}}, `namespace "-x" is not a valid channel segment`},
		{"wildcard namespace", authz.Policy{Namespaces: map[string]authz.NamespacePolicy{"*": {}}}, "not a valid channel segment"},
		{"unknown rule", ns(authz.NamespacePolicy{Publish: []authz.Rule{"everyone"}}), `namespace Room, publish: unknown rule "everyone"`},
		{"empty group", ns(authz.NamespacePolicy{Subscribe: []authz.Rule{authz.GroupRule("")}}), `namespace Room, subscribe: rule "group:" needs a group name`},
		{"group with space", ns(authz.NamespacePolicy{Subscribe: []authz.Rule{authz.GroupRule("a b")}}), "needs a group name"},
		{"deny mixed", ns(authz.NamespacePolicy{Subscribe: []authz.Rule{authz.RuleOwner, authz.RuleDeny}}), `rule "deny" must be the only rule`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, authz.ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	if _, err := authz.New(authz.Config{}, nil); !errors.Is(err, authz.ErrInvalidConfig) {
		t.Fatalf("New without DataDir = %v", err)
	}
	if _, err := authz.New(authz.Config{DataDir: t.TempDir()}, nil); !errors.Is(err, authz.ErrInvalidConfig) {
		t.Fatalf("New without a connection = %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	svc, err := authz.New(authz.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}, nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	e := &env{nc: nc, svc: svc, dev: svc.DevIssuer(), subj: bus.NewSubjects("")}
	e.waitReady(t)

	if err := svc.Run(context.Background()); !errors.Is(err, authz.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
	// The micro service is discoverable under its name.
	info, err := nc.Request("$SRV.INFO."+authz.ServiceName, nil, 5*time.Second)
	if err != nil || !strings.Contains(string(info.Data), bus.QueueAuthz) {
		t.Fatalf("$SRV.INFO: %v %s", err, info.Data)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	_, err = e.check(t, bus.CheckRequest{Op: bus.OpSubscribe, Channel: "/x"})
	if !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("after stop: %v, want no responders", err)
	}
}
