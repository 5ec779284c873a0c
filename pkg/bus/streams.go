package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream limits. Each is a deliberate bound, not a guess at traffic.
const (
	// InboundMaxAge drops chat requests no worker picked up within this time.
	InboundMaxAge = 10 * time.Minute
	// InboundDuplicateWindow de-duplicates re-sent publishes by Nats-Msg-Id.
	InboundDuplicateWindow = 2 * time.Minute
	// UsageMaxAge keeps usage records after the ledger has them, for replay.
	UsageMaxAge = 7 * 24 * time.Hour
	// UsageDuplicateWindow makes usage records idempotent by request id.
	UsageDuplicateWindow = 30 * time.Minute
	// MaxEventBytes is the largest stored chat request.
	MaxEventBytes = 1 << 20
)

// EnsureStreams declares the INBOUND and USAGE streams, creating or updating
// them; calling it from every replica at start-up is safe.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects) error {
	cfgs := []jetstream.StreamConfig{
		{
			Name:        s.StreamInbound(),
			Description: "Gatehouse chat requests (work queue shared by chat replicas)",
			Subjects:    []string{s.InboundAll()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      InboundMaxAge,
			Duplicates:  InboundDuplicateWindow,
			MaxMsgSize:  MaxEventBytes,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        s.StreamUsage(),
			Description: "Gatehouse usage records, one per finished request",
			Subjects:    []string{s.UsageAll()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      UsageMaxAge,
			Duplicates:  UsageDuplicateWindow,
			MaxMsgSize:  64 << 10,
		},
	}
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("bus: declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
