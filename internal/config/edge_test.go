package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEdgeProtectionSettingsLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	yml := "edge:\n  max_connections: 5000\n  max_connections_per_identity: 7\n  publish_rate: 2.5\n  publish_burst: 10\n  auth_deadline: 3s\n  write_timeout: 4s\n  read_limit: 300000\n  connection_timeout: 2m\n  max_deliver_bytes: 4096\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"GATEHOUSE_EDGE__MAX_CONNECTIONS_PER_IDENTITY=9"})
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Edge
	if e.MaxConnections != 5000 || e.MaxConnectionsPerIdentity != 9 || e.PublishRate != 2.5 || e.PublishBurst != 10 ||
		e.AuthDeadline != 3*time.Second || e.WriteTimeout != 4*time.Second || e.ReadLimit != 300000 ||
		e.ConnectionTimeout != 2*time.Minute || e.MaxDeliverBytes != 4096 {
		t.Fatalf("edge settings not loaded: %+v", e)
	}
}

func TestEdgeProtectionSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Edge)
		want string
	}{
		{"negative max connections", func(e *Edge) { e.MaxConnections = -1 }, "edge.max_connections: -1"},
		{"per identity above total", func(e *Edge) { e.MaxConnections = 10; e.MaxConnectionsPerIdentity = 11 }, "edge.max_connections_per_identity: 11 must not exceed"},
		{"negative rate", func(e *Edge) { e.PublishRate = -1 }, "edge.publish_rate"},
		{"burst below one publish", func(e *Edge) { e.PublishBurst = 4 }, "edge.publish_burst: 4 must be at least 5"},
		{"negative auth deadline", func(e *Edge) { e.AuthDeadline = -time.Second }, "edge.auth_deadline"},
		{"negative write timeout", func(e *Edge) { e.WriteTimeout = -time.Second }, "edge.write_timeout"},
		{"read limit below one event", func(e *Edge) { e.ReadLimit = 1000 }, "edge.read_limit: 1000 must be at least"},
		{"connection timeout below keep-alive", func(e *Edge) { e.ConnectionTimeout = 10 * time.Second }, "edge.connection_timeout"},
		{"negative deliver limit", func(e *Edge) { e.MaxDeliverBytes = -5 }, "edge.max_deliver_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			tc.mod(&cfg.Edge)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEdgeMetricsSetting(t *testing.T) {
	t.Parallel()
	if cfg, err := Load("", nil); err != nil || !cfg.Edge.Metrics {
		t.Fatalf("default: metrics=%v err=%v, want on", cfg.Edge.Metrics, err)
	}
	path := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(path, []byte("edge:\n  metrics: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load(path, nil); err != nil || cfg.Edge.Metrics {
		t.Fatalf("yaml false: metrics=%v err=%v", cfg.Edge.Metrics, err)
	}
	if cfg, err := Load(path, []string{"GATEHOUSE_EDGE__METRICS=true"}); err != nil || !cfg.Edge.Metrics {
		t.Fatalf("env true over yaml false: metrics=%v err=%v", cfg.Edge.Metrics, err)
	}
	if _, err := Load("", []string{"GATEHOUSE_EDGE__METRICS=maybe"}); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("invalid value: err=%v, want an error naming the setting", err)
	}
}
