package stack

import (
	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// StreamOptions maps the NATS configuration to the options of the streams
// every service declares; each service's Config gets the same value, so
// that every process declares the streams alike. A storage name that
// [config.Config.Validate] rejects maps to file.
func StreamOptions(n config.NATS) bus.StreamOptions {
	st, _ := bus.ParseStorage(n.InboundStorage)
	return bus.StreamOptions{InboundStorage: st, MaxRequestBytes: n.MaxRequestBytes}
}
