package config

import (
	"fmt"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// NATS configures the bus.
type NATS struct {
	// URL of the NATS server for single-service commands. Default
	// nats://127.0.0.1:4222; also read from NATS_URL.
	URL string `yaml:"url"`
	// Prefix starts every subject. Default "gh".
	Prefix string `yaml:"prefix"`
	// Listen, for `gatehouse dev` only, opens the embedded server's client
	// port on this host:port (e.g. 127.0.0.1:4223). Default: no listener,
	// services connect in-process.
	Listen string `yaml:"listen"`
}

func (n NATS) validate() []error {
	var errs []error
	if !bus.ValidPrefix(n.Prefix) {
		errs = append(errs, fmt.Errorf("nats.prefix: %q must be dot-separated tokens of letters, digits, '-' and '_'", n.Prefix))
	}
	return errs
}
