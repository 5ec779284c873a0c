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
	// InboundStorage is the JetStream storage of the INBOUND stream, where
	// chat requests wait for a chat worker: "file" or "memory". Memory adds
	// less time to the first token of every chat request, but requests
	// not yet pulled by a worker are lost when the NATS server restarts;
	// file keeps them. An existing stream keeps its storage: to switch,
	// let chat workers drain INBOUND and delete it. Default "file".
	InboundStorage string `yaml:"inbound_storage"`
	// MaxRequestBytes bounds one chat request as stored in INBOUND (JSON,
	// images base64-encoded): a larger one is a 413. 0, the default, takes
	// the NATS server's max_payload less 16 KiB for headers: 1,032,192
	// bytes on a stock server (max_payload 1 MiB), 8,372,224 on the
	// embedded server of `gatehouse dev`. A value the server cannot carry
	// stops every service at start naming max_payload; raise max_payload
	// in the server's configuration first. `gatehouse dev` raises its
	// embedded server's to fit. 65,536 to 67,108,864.
	MaxRequestBytes int `yaml:"max_request_bytes"`
}

func (n NATS) validate() []error {
	var errs []error
	if !bus.ValidPrefix(n.Prefix) {
		errs = append(errs, fmt.Errorf("nats.prefix: %q must be dot-separated tokens of letters, digits, '-' and '_'", n.Prefix))
	}
	if _, err := bus.ParseStorage(n.InboundStorage); err != nil {
		errs = append(errs, fmt.Errorf("nats.inbound_storage: %q is not one of %s, %s", n.InboundStorage, bus.StorageFile, bus.StorageMemory))
	}
	if r := n.MaxRequestBytes; r != 0 && (r < bus.MinRequestBytes || r > bus.MaxRequestBytesCeiling) {
		errs = append(errs, fmt.Errorf("nats.max_request_bytes: %d must be 0 (derived from the server's max_payload) or %d to %d", r, bus.MinRequestBytes, bus.MaxRequestBytesCeiling))
	}
	return errs
}
