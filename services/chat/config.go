package chat

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Defaults applied to zero [Config] fields.
const (
	DefaultConcurrency   = 32
	DefaultMeterTimeout  = 2 * time.Second
	DefaultCacheTimeout  = 500 * time.Millisecond
	DefaultMaxMessages   = 200
	DefaultMaxInputBytes = 512 << 10
	DefaultDrainTimeout  = 30 * time.Second
	DefaultAckWait       = 30 * time.Second
)

// Fixed limits.
const (
	// MaxConversationIDBytes bounds the conversationId a client may send;
	// it is echoed on every event.
	MaxConversationIDBytes = 256
	// MaxDeliver is how many times JetStream delivers an INBOUND message
	// that is never acknowledged (its worker died before validating it).
	MaxDeliver = 3
	// SetupTimeout bounds declaring streams and the consumer in Run.
	SetupTimeout = 10 * time.Second
	// UsagePublishAttempts is how many times a usage record is published
	// before the failure is logged and the record given up.
	UsagePublishAttempts = 4
	// UsagePublishTimeout bounds one publish attempt of a usage record.
	UsagePublishTimeout = 2 * time.Second
	// UsageRetryBackoff is the first pause between usage publish attempts;
	// it doubles after each failure.
	UsageRetryBackoff = 100 * time.Millisecond
	// SettleTimeout bounds settling a reservation.
	SettleTimeout = 2 * time.Second
	// EarlyCancelTTL is how long a cancel for a request this replica does
	// not (yet) run is remembered, in case the request starts after it.
	EarlyCancelTTL = time.Minute
	// MaxEarlyCancels bounds how many such cancels are remembered.
	MaxEarlyCancels = 4096
)

// Config configures the chat service. The zero value is usable: the echo
// model, 32 concurrent requests, caching on.
type Config struct {
	// Prefix is the subject prefix; "" means [bus.DefaultPrefix].
	Prefix string
	// Logger receives the service's logs; nil means slog.Default(). It is
	// scoped with svc=chat.
	Logger *slog.Logger
	// Concurrency is how many requests this replica processes at once; it
	// also sizes the consumer's MaxAckPending and pull batch. Default
	// [DefaultConcurrency].
	Concurrency int
	// Models is the model catalog; nil means [DefaultModels].
	Models []Model
	// EchoDelay is the pause between chunks of the echo model, for
	// realistic streaming in development. Default 0.
	EchoDelay time.Duration
	// MeterTimeout bounds the quota reservation of one request. Default
	// [DefaultMeterTimeout].
	MeterTimeout time.Duration
	// CacheTimeout bounds one cache lookup or store. Default
	// [DefaultCacheTimeout].
	CacheTimeout time.Duration
	// DisableCache turns the response cache off (lookups and stores).
	// The zero value caches.
	DisableCache bool
	// MaxMessages bounds the messages of one request. Default
	// [DefaultMaxMessages].
	MaxMessages int
	// MaxInputBytes bounds the total text (system and messages) of one
	// request. Default [DefaultMaxInputBytes].
	MaxInputBytes int
	// MaxOutputTokens caps inferenceConfig.maxTokens for every model on
	// top of each model's own MaxTokens; 0 means the model's MaxTokens.
	MaxOutputTokens int
	// DrainTimeout is how long Run lets in-flight requests finish after
	// its context ends before cancelling them. Default
	// [DefaultDrainTimeout].
	DrainTimeout time.Duration
	// AckWait is the consumer's redelivery timeout for a message that was
	// pulled but never acknowledged. Default [DefaultAckWait].
	AckWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Models == nil {
		c.Models = DefaultModels()
	} else {
		c.Models = slices.Clone(c.Models)
	}
	if c.MeterTimeout == 0 {
		c.MeterTimeout = DefaultMeterTimeout
	}
	if c.CacheTimeout == 0 {
		c.CacheTimeout = DefaultCacheTimeout
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.MaxInputBytes == 0 {
		c.MaxInputBytes = DefaultMaxInputBytes
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
// Errors wrap [ErrInvalidConfig].
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Prefix != "" && !bus.ValidPrefix(c.Prefix):
		return fmt.Errorf("%w: Prefix %q is not a valid subject prefix", ErrInvalidConfig, c.Prefix)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency %d must be at least 1", ErrInvalidConfig, c.Concurrency)
	case c.EchoDelay < 0:
		return fmt.Errorf("%w: EchoDelay %s is negative", ErrInvalidConfig, c.EchoDelay)
	case c.MeterTimeout < 0:
		return fmt.Errorf("%w: MeterTimeout %s is negative", ErrInvalidConfig, c.MeterTimeout)
	case c.CacheTimeout < 0:
		return fmt.Errorf("%w: CacheTimeout %s is negative", ErrInvalidConfig, c.CacheTimeout)
	case c.MaxMessages < 1:
		return fmt.Errorf("%w: MaxMessages %d must be at least 1", ErrInvalidConfig, c.MaxMessages)
	case c.MaxInputBytes < 1:
		return fmt.Errorf("%w: MaxInputBytes %d must be at least 1", ErrInvalidConfig, c.MaxInputBytes)
	case c.MaxOutputTokens < 0:
		return fmt.Errorf("%w: MaxOutputTokens %d is negative", ErrInvalidConfig, c.MaxOutputTokens)
	case c.DrainTimeout < 0:
		return fmt.Errorf("%w: DrainTimeout %s is negative", ErrInvalidConfig, c.DrainTimeout)
	case c.AckWait < time.Second:
		return fmt.Errorf("%w: AckWait %s is below 1s", ErrInvalidConfig, c.AckWait)
	}
	_, err := newCatalog(c.Models)
	return err
}
