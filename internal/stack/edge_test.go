package stack

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
)

func TestEdgeConfigMapping(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = "/srv/gh"
	e := &cfg.Edge
	e.MaxConnections = 5000
	e.MaxConnectionsPerIdentity = 7
	e.PublishRate = 2.5
	e.PublishBurst = 10
	e.AuthDeadline = 3 * time.Second
	e.WriteTimeout = 4 * time.Second
	e.ReadLimit = 300000
	e.ConnectionTimeout = 2 * time.Minute
	e.MaxDeliverBytes = 4096
	ec := EdgeConfig(cfg, slog.Default())
	if ec.MaxConnections != 5000 || ec.MaxConnectionsPerIdentity != 7 || ec.PublishRate != 2.5 || ec.PublishBurst != 10 ||
		ec.InitTimeout != 3*time.Second || ec.WriteTimeout != 4*time.Second || ec.ReadLimit != 300000 ||
		ec.ConnectionTimeout != 2*time.Minute || ec.MaxDeliverBytes != 4096 ||
		ec.MaxSubscriptionsPerConn != 200 || ec.SendQueueLen != 256 || ec.KeepAliveInterval != 30*time.Second {
		t.Fatalf("edge config not mapped: %+v", ec)
	}
	if ec.DevTLSDir != filepath.Join("/srv/gh", "tls") {
		t.Fatalf("DevTLSDir = %q", ec.DevTLSDir)
	}
	if err := ec.Validate(); err != nil {
		t.Fatalf("mapped config invalid: %v", err)
	}
	// Zero settings mean the edge's defaults, which validate.
	if err := EdgeConfig(config.Default(), nil).Validate(); err != nil {
		t.Fatalf("default mapping invalid: %v", err)
	}
}
