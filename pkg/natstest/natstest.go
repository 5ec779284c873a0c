// Package natstest runs a real nats-server with JetStream inside a test
// process, in the manner of nats-server's own test helpers.
package natstest

import (
	"testing"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start runs an embedded NATS server with JetStream on a random loopback
// port, storing data in t.TempDir(). It is shut down when the test ends.
func Start(t testing.TB) *server.Server {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: t.TempDir(), Port: -1, ReadyTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect opens a client connection to srv that is closed when the test ends.
func Connect(t testing.TB, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
