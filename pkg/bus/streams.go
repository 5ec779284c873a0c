package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
		if err := ensureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("bus: declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its settings
// differ. Updating unconditionally from every replica at start-up makes the
// server rewrite the store's configuration while consumers are being added,
// which is needless work (and races inside nats-server v2.15 under -race).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, cfg)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		// Another replica created it first with other settings: reconcile.
		st, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return err
	}
	if sameStreamSettings(st.CachedInfo().Config, cfg) {
		return nil
	}
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// sameStreamSettings compares the settings [EnsureStreams] declares.
func sameStreamSettings(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates &&
		have.MaxMsgSize == want.MaxMsgSize &&
		have.Discard == want.Discard &&
		have.Description == want.Description
}
