package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCommands(t *testing.T) {
	data := t.TempDir()
	t.Setenv("GATEHOUSE_CONFIG", "")

	if out, _, err := runCmd(t, "version"); err != nil || !strings.HasPrefix(out, "gatehouse ") {
		t.Errorf("version: %q %v", out, err)
	}
	if _, _, err := runCmd(t); err == nil {
		t.Error("no command accepted")
	}
	if _, _, err := runCmd(t, "frobnicate"); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("unknown command: %v", err)
	}
	if _, _, err := runCmd(t, "token", "--data", data); err == nil || !strings.Contains(err.Error(), "--sub") {
		t.Errorf("token without --sub: %v", err)
	}
	tok, _, err := runCmd(t, "token", "--data", data, "--sub", "alice", "--groups", "a, b")
	if err != nil || strings.Count(strings.TrimSpace(tok), ".") != 2 {
		t.Errorf("token: %q %v", tok, err)
	}
	tok2, _, _ := runCmd(t, "token", "--data", data, "--sub", "alice")
	if tok2 == tok {
		t.Error("two tokens are identical")
	}
	out, _, err := runCmd(t, "config", "--data", data)
	if err != nil || !strings.Contains(out, "data_dir: "+data) || !strings.Contains(out, "keep_alive: 30s") {
		t.Errorf("config: %v\n%s", err, out)
	}
	t.Setenv("GATEHOUSE_EDGE__NOPE", "1")
	if _, _, err := runCmd(t, "config"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown env key accepted: %v", err)
	}
}

func TestMigrateSQLite(t *testing.T) {
	data := t.TempDir()
	t.Setenv("GATEHOUSE_CONFIG", "")
	for range 2 {
		out, _, err := runCmd(t, "migrate", "--data", data)
		if err != nil || !strings.Contains(out, "migrations applied") {
			t.Fatalf("migrate: %q %v", out, err)
		}
	}
}
