package stack

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/nats-io/nats.go"
)

// runner is what every service exposes.
type runner interface {
	Run(ctx context.Context) error
}

// builders construct each service from the configuration. Keys are the
// service names used on the command line; each builder lives in the file
// named after its service.
var builders = map[string]func(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error){
	"edge":  buildEdge,
	"authz": buildAuthz,
	"chat":  buildChat,
	"meter": buildMeter,
	"cache": buildCache,
}

// ServiceNames lists the services in a stable order.
func ServiceNames() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func build(name string, cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	b, ok := builders[name]
	if !ok {
		return nil, fmt.Errorf("unknown service %q (one of %v)", name, ServiceNames())
	}
	r, err := b(cfg, nc, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}
