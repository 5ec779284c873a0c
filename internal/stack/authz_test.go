package stack

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
)

func TestAuthzConfigFromYAML(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	yaml := `data_dir: ` + dir + `
authz:
  jwks_min_refresh: 30s
  admin_group: ops
  issuers:
    - issuer_url: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf
      audiences: [client-1]
      cognito: true
  models:
    plans: {pro: ["claude-*"]}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, []string{"GATEHOUSE_AUTHZ__KEY_LAST_USED_FLUSH=5s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ac := AuthzConfig(cfg, slog.Default())
	if err := ac.Validate(); err != nil {
		t.Fatalf("mapped authz config is invalid: %v", err)
	}
	if len(ac.Issuers) != 1 || !ac.Issuers[0].Cognito || ac.Issuers[0].Audiences[0] != "client-1" ||
		ac.JWKSMinRefresh != 30*time.Second || ac.AdminGroup != "ops" || ac.KeyLastUsedFlush != 5*time.Second {
		t.Fatalf("authz config = %+v", ac)
	}
	// A configured model policy denies what it does not list: no implicit default.
	if ac.Models.Default == nil || len(ac.Models.Default) != 0 || len(ac.Models.Plans["pro"]) != 1 {
		t.Fatalf("models = %+v", ac.Models)
	}
	// Keys live in the ledger: the SQLite file unless Postgres is configured.
	if ac.SQLitePath != filepath.Join(dir, "ledger.db") || ac.DatabaseURL != "" {
		t.Fatalf("key store = %q %q", ac.DatabaseURL, ac.SQLitePath)
	}
}

func TestAuthzConfigRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte("authz:\n  issuers:\n    - issuer_url: https://x\n      audience: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path, nil); err == nil {
		t.Fatal("unknown key audience (for audiences) was accepted")
	}
}
