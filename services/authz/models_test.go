package authz_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/authz"
)

func TestModelPolicy(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{Models: authz.ModelPolicy{
		Default: []string{"echo"},
		Plans:   map[string][]string{"pro": {"anthropic.claude-*"}},
		Groups:  map[string][]string{"beta": {"gpt-5"}},
	}})
	free := identity.Identity{Sub: "f", ChannelID: "f", Kind: identity.KindUser, Plan: "free"}
	pro := identity.Identity{Sub: "p", ChannelID: "p", Kind: identity.KindUser, Plan: "pro"}
	beta := identity.Identity{Sub: "b", ChannelID: "b", Kind: identity.KindUser, Groups: []string{"beta"}}
	expired := identity.Identity{Sub: "x", ChannelID: "x", Kind: identity.KindUser, ExpiresAt: time.Now().Add(-time.Hour)}
	for _, tc := range []struct {
		id    identity.Identity
		model string
		allow bool
		why   string
	}{
		{free, "echo", true, ""},
		{free, "anthropic.claude-sonnet", false, "model anthropic.claude-sonnet is not available to plan free"},
		{pro, "anthropic.claude-sonnet", true, ""},
		{pro, "gpt-5", false, "not available to plan pro"},
		{beta, "gpt-5", true, ""},
		{beta, "gpt-5-mini", false, "not available to plan (none)"},
		{pro, "anthropic.claude-*", false, "must be an exact model id, not a pattern"},
		{pro, "", false, "no model given"},
		{pro, "a b", false, "without spaces"},
		{identity.Identity{}, "echo", false, "no verified identity"},
		{expired, "echo", false, "credential expired"},
	} {
		got, err := e.check(t, bus.ModelCheckRequest{Identity: tc.id, Op: bus.OpInvoke, Model: tc.model})
		if err != nil || got.Allow != tc.allow || !strings.Contains(got.Reason, tc.why) {
			t.Errorf("%s invoke %q = %+v, %v; want allow=%v reason containing %q", tc.id.Sub, tc.model, got, err, tc.allow, tc.why)
		}
	}
}

func TestDefaultModelPolicyAllowsEveryModel(t *testing.T) {
	t.Parallel()
	e := start(t, authz.Config{})
	got, err := e.check(t, bus.ModelCheckRequest{Identity: identity.Identity{Sub: "a", ChannelID: "a"}, Op: bus.OpInvoke, Model: "any-model"})
	if err != nil || !got.Allow {
		t.Fatalf("default policy: %+v, %v", got, err)
	}
}

func TestInvalidIssuerAndModelConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  authz.Config
		want string
	}{
		{authz.Config{DataDir: dir, Models: authz.ModelPolicy{Default: []string{"[x"}}}, "is not a valid glob"},
		{authz.Config{DataDir: dir, Models: authz.ModelPolicy{Plans: map[string][]string{"": {"x"}}}}, "models.plans: name"},
		{authz.Config{DataDir: dir, Issuers: []authz.OIDCIssuer{{IssuerURL: "not a url"}}}, "Issuers[0]: IssuerURL"},
		{authz.Config{DataDir: dir, Issuers: []authz.OIDCIssuer{{IssuerURL: authz.DefaultDevIssuerURL}}}, "listed twice (or is the dev issuer)"},
		{authz.Config{DataDir: dir, Issuers: []authz.OIDCIssuer{{IssuerURL: "https://i", JWKSURL: "ftp://x"}}}, "JWKSURL"},
		{authz.Config{DataDir: dir, JWKSMinRefresh: time.Microsecond}, "JWKSMinRefresh"},
		{authz.Config{DataDir: dir, DatabaseURL: "mysql://x"}, "DatabaseURL must start with postgres://"},
		{authz.Config{DataDir: dir, KeyLastUsedFlush: time.Hour}, "KeyLastUsedFlush"},
		{authz.Config{DataDir: dir, AdminGroup: "a b"}, "AdminGroup"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, authz.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want ErrInvalidConfig containing %q", err, tc.want)
		}
	}
}
