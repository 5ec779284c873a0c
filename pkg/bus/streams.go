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
	// InboundKeepInterval is how often chat stores a keep marker in a
	// file-stored INBOUND (on [Subjects.InboundKeep], one per interval
	// whatever the number of replicas: the marker's message id is the
	// interval's start). JetStream's file store deletes a work queue's last
	// block file and creates a new one whenever its last request is
	// removed, which on a quiet queue is every acknowledgement: measured,
	// about 0.17 ms of server CPU per request and a slower next step on
	// the request's path (bench/RESULTS.md, round 6). A marker in the last
	// block keeps it from ever being empty; markers expire with
	// [InboundMaxAge].
	InboundKeepInterval = time.Second
	// RequestHeaderHeadroom is the part of the NATS server's max_payload
	// left for a chat request's headers (caller identity, reply subject,
	// trace context, message id) when [RequestLimit] derives the largest
	// request from it.
	RequestHeaderHeadroom = 16 << 10
	// MaxRequestBytesCeiling bounds the largest chat request whatever the
	// server allows: NATS advises against messages larger than this.
	MaxRequestBytesCeiling = 64 << 20
	// MinRequestBytes is the smallest request limit that may be set.
	MinRequestBytes = 64 << 10
)

// Storage names, as the nats.inbound_storage setting spells them.
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// ParseStorage returns the JetStream storage named [StorageFile] or
// [StorageMemory].
func ParseStorage(name string) (jetstream.StorageType, error) {
	switch name {
	case StorageFile:
		return jetstream.FileStorage, nil
	case StorageMemory:
		return jetstream.MemoryStorage, nil
	}
	return 0, fmt.Errorf("bus: storage %q is not one of %s, %s", name, StorageFile, StorageMemory)
}

// storageName is the inverse of [ParseStorage].
func storageName(st jetstream.StorageType) string {
	switch st {
	case jetstream.FileStorage:
		return StorageFile
	case jetstream.MemoryStorage:
		return StorageMemory
	}
	return st.String()
}

// StreamOptions are the operator's choices for the streams [EnsureStreams]
// declares. The zero value is the default: every stream on file storage.
// Every process that declares the streams must pass the same options.
type StreamOptions struct {
	// InboundStorage is the storage of the INBOUND stream (chat requests
	// waiting for a worker). jetstream.FileStorage, the zero value, keeps
	// them across a NATS server restart. jetstream.MemoryStorage adds less
	// time to the first token of every chat request, but the requests
	// stored and not yet pulled by a chat worker are lost when the server
	// restarts. An existing stream keeps its storage: see
	// [InboundStorageError]. USAGE is always on file.
	InboundStorage jetstream.StorageType
	// MaxRequestBytes bounds a stored chat request (JSON, images base64
	// included), the INBOUND stream's largest message. 0, the default,
	// derives it from the NATS server's max_payload: see [RequestLimit].
	MaxRequestBytes int
}

// RequestLimit returns the largest chat request a service may store, given
// the NATS server's max_payload and the configured limit (0 derives it:
// max_payload less [RequestHeaderHeadroom], at most
// [MaxRequestBytesCeiling]). A configured limit the server cannot carry is
// an error saying which setting to change. A stock server's max_payload
// of 1 MiB gives 1,032,192 bytes; the embedded server of `gatehouse dev`
// allows 8 MiB.
func RequestLimit(maxPayload int64, configured int) (int, error) {
	room := maxPayload - RequestHeaderHeadroom
	switch {
	case configured < 0:
		return 0, fmt.Errorf("bus: nats.max_request_bytes is %d; use 0 (derived from the server's max_payload) or at least %d", configured, MinRequestBytes)
	case configured == 0 && room < MinRequestBytes:
		return 0, fmt.Errorf("bus: the NATS server's max_payload is %d bytes, too small for chat requests (at least %d); raise max_payload in the server's configuration", maxPayload, MinRequestBytes+RequestHeaderHeadroom)
	case configured == 0:
		return int(min(room, MaxRequestBytesCeiling)), nil
	case configured < MinRequestBytes || configured > MaxRequestBytesCeiling:
		return 0, fmt.Errorf("bus: nats.max_request_bytes is %d; it must be 0 (derived from the server's max_payload) or %d to %d", configured, MinRequestBytes, MaxRequestBytesCeiling)
	case int64(configured) > room:
		return 0, fmt.Errorf("bus: nats.max_request_bytes is %d, more than the NATS server's max_payload (%d) allows with %d bytes for headers: raise max_payload in the server's configuration to at least %d, or lower nats.max_request_bytes",
			configured, maxPayload, RequestHeaderHeadroom, configured+RequestHeaderHeadroom)
	}
	return configured, nil
}

// InboundStorageError reports that the INBOUND stream exists with another
// storage than [StreamOptions.InboundStorage] asks for. NATS cannot change
// the storage of a stream in place, and [EnsureStreams] does not delete the
// stream (it may hold requests no worker has pulled yet), so the operator
// resolves it.
type InboundStorageError struct {
	// Stream is the name of the INBOUND stream (with its prefix).
	Stream string
	// Have is the storage of the existing stream; Want the one asked for.
	Have, Want jetstream.StorageType
}

func (e *InboundStorageError) Error() string {
	return fmt.Sprintf("stream %s is stored in %s but nats.inbound_storage is %s: "+
		"the storage of an existing stream cannot change; let chat workers drain it, "+
		"delete it (nats stream rm %s) and restart, or set nats.inbound_storage back to %s",
		e.Stream, storageName(e.Have), storageName(e.Want), e.Stream, storageName(e.Have))
}

// EnsureStreams declares the INBOUND and USAGE streams, creating or updating
// them; calling it from every replica at start-up is safe. It fails with an
// [*InboundStorageError] when INBOUND exists with another storage than
// opts asks for, and leaves that stream as it is.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects, opts StreamOptions) error {
	limit, err := RequestLimit(js.Conn().MaxPayload(), opts.MaxRequestBytes)
	if err != nil {
		return err
	}
	inbound := jetstream.StreamConfig{
		Name:        s.StreamInbound(),
		Description: "Gatehouse chat requests (work queue shared by chat replicas)",
		Subjects:    []string{s.InboundAll(), s.InboundKeep()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     opts.InboundStorage,
		MaxAge:      InboundMaxAge,
		Duplicates:  InboundDuplicateWindow,
		MaxMsgSize:  int32(limit),
		Discard:     jetstream.DiscardOld,
	}
	usage := jetstream.StreamConfig{
		Name:        s.StreamUsage(),
		Description: "Gatehouse usage records, one per finished request",
		Subjects:    []string{s.UsageAll()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      UsageMaxAge,
		Duplicates:  UsageDuplicateWindow,
		MaxMsgSize:  64 << 10,
	}
	inboundStorage := func(have jetstream.StorageType) error {
		return &InboundStorageError{Stream: inbound.Name, Have: have, Want: inbound.Storage}
	}
	if err := ensureStream(ctx, js, inbound, inboundStorage); err != nil {
		return fmt.Errorf("bus: declare stream %s: %w", inbound.Name, err)
	}
	if err := ensureStream(ctx, js, usage, nil); err != nil {
		return fmt.Errorf("bus: declare stream %s: %w", usage.Name, err)
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its settings
// differ. Updating unconditionally from every replica at start-up makes the
// server rewrite the store's configuration while consumers are being added,
// which is needless work (and races inside nats-server v2.15 under -race).
// When the existing stream has another storage and storageErr is not nil,
// it returns storageErr's error and leaves the stream alone; with nil the
// update is tried (and the server refuses it).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, storageErr func(have jetstream.StorageType) error) error {
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
	have := st.CachedInfo().Config
	if have.Storage != cfg.Storage && storageErr != nil {
		return storageErr(have.Storage)
	}
	if sameStreamSettings(have, cfg) {
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
