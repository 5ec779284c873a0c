package chat

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/keyindex"
)

// Defaults applied to zero [Config] fields.
const (
	DefaultConcurrency  = 32
	DefaultMeterTimeout = 2 * time.Second
	DefaultCacheTimeout = 500 * time.Millisecond
	// DefaultCacheIndexMaxKeys is the default [Config.CacheIndexMaxKeys]
	// (about 36 MiB when full).
	DefaultCacheIndexMaxKeys = keyindex.DefaultMaxKeys
	DefaultAuthzTimeout      = time.Second
	DefaultMaxMessages       = 200
	DefaultMaxInputBytes     = 512 << 10
	DefaultDrainTimeout      = 30 * time.Second
	DefaultAckWait           = 30 * time.Second
	// DefaultProviderConcurrency bounds the calls in flight to one
	// provider from one replica when [ProviderConfig.MaxConcurrent] is 0.
	DefaultProviderConcurrency = 64
	// DefaultRetryAttempts is how many times one model is tried before
	// falling back.
	DefaultRetryAttempts = 2
	// DefaultRetryBackoff is the first pause between attempts.
	DefaultRetryBackoff = 200 * time.Millisecond
	// DefaultFirstTokenTimeout bounds the wait for a model's first token.
	DefaultFirstTokenTimeout = 60 * time.Second
)

// Fixed limits.
const (
	// MaxConversationIDBytes bounds the conversationId a client may send;
	// it is echoed on every event.
	MaxConversationIDBytes = 256
	// MaxTools bounds the tools one request may offer (OpenAI's limit);
	// cache points among them do not count.
	MaxTools = 128
	// MaxCachePoints bounds the prompt cache points of one request, in
	// its system blocks, messages and tools together (Anthropic's limit
	// on Bedrock).
	MaxCachePoints = 4
	// MaxToolNameBytes bounds a tool's name, which must match
	// [a-zA-Z0-9_-] (the rule of both Bedrock and OpenAI).
	MaxToolNameBytes = 64
	// MaxToolUseIDBytes bounds a toolUseId / tool_call_id.
	MaxToolUseIDBytes = 128
	// MaxImages bounds the images of one request (Bedrock's limit). Their
	// bytes do not count toward MaxInputBytes: a stored chat request is at
	// most nats.max_request_bytes (base64 included; by default the NATS
	// server's max_payload less 16 KiB, see bus.RequestLimit), which bounds
	// them.
	MaxImages = 20
	// MaxImageURLBytes bounds the URL of an image a provider fetches.
	MaxImageURLBytes = 8 << 10
	// MaxDeliver is how many times JetStream delivers an INBOUND message:
	// once. It is the at-most-once rule: JetStream never redelivers a
	// request, so an asynchronous acknowledgement (no round trip before the
	// model is called) is enough to never run a request twice. A message
	// whose worker died before acknowledging it is answered with
	// internal_error by a surviving replica once [Config.AckWait] has
	// passed (see the package doc).
	MaxDeliver = 1
	// ClaimTimeout bounds each JetStream call that claims or answers a
	// request outside the fast path: deleting a late request from INBOUND
	// before running it, and reading and deleting an undelivered one.
	ClaimTimeout = 5 * time.Second
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
	// MaxRetryBackoff caps the pause between attempts (the backoff doubles,
	// and an upstream Retry-After is honoured up to this).
	MaxRetryBackoff = 5 * time.Second
	// MaxRetryAttempts bounds [Config.RetryAttempts].
	MaxRetryAttempts = 10
	// DecisionCacheTTL is how long a replica reuses authz's allow of a
	// model for the same caller (same issuer, sub, API key, plan, groups
	// and tenant) without asking again; never past the caller's
	// credential expiry. A revocation drops matching entries at once.
	DecisionCacheTTL = 30 * time.Second
	// MaxCachedDecisions bounds the allow decisions one replica caches.
	MaxCachedDecisions = 16384
)

// Provider types a [ProviderConfig.Type] may take.
const (
	// ProviderTypeBedrock is Amazon Bedrock's ConverseStream API.
	ProviderTypeBedrock = "bedrock"
	// ProviderTypeOpenAI is any OpenAI-compatible chat completions server.
	ProviderTypeOpenAI = "openai"
)

// ProviderConfig configures one upstream a [Model] may name.
type ProviderConfig struct {
	// Name is what [Model.Provider] refers to; it is recorded in the
	// ledger. It must not be "echo".
	Name string
	// Type is [ProviderTypeBedrock] or [ProviderTypeOpenAI].
	Type string
	// BaseURL is, for openai, the API root ("https://api.openai.com/v1",
	// "http://localhost:11434/v1"; required) and, for bedrock, an endpoint
	// override ("" = the region's endpoint).
	BaseURL string
	// APIKey is the openai bearer key ("" sends none).
	APIKey string
	// Region is the bedrock AWS region; "" takes it from the standard
	// chain (AWS_REGION, the shared config profile).
	Region string
	// AWS, when set, is the AWS configuration of a bedrock provider
	// instead of the one config.LoadDefaultConfig finds (credentials,
	// region); Region and BaseURL still apply.
	AWS *aws.Config
	// HTTPClient is the openai provider's HTTP client; nil means one
	// without a global timeout (calls are bounded by their context).
	HTTPClient *http.Client
	// MaxConcurrent bounds the calls in flight to this provider from one
	// replica; a request waits for a slot. Default
	// [DefaultProviderConcurrency].
	MaxConcurrent int
	// ImageURLs lets callers send an openai provider images by http(s)
	// URL, which the server then fetches. Off by default: a self-hosted
	// server (vLLM, Ollama) fetching addresses a caller names can reach
	// the operator's internal network. Turn it on for servers that fetch
	// from the public internet only (api.openai.com). Bedrock never
	// fetches; images always reach it as bytes.
	ImageURLs bool
}

// Config configures the chat service. The zero value is usable: the echo
// model, 32 concurrent requests, caching on.
type Config struct {
	// Prefix is the subject prefix; "" means [bus.DefaultPrefix].
	Prefix string
	// Streams are the options of the streams chat declares at start
	// (INBOUND, which it consumes, and USAGE). Every process that declares
	// them must use the same; the zero value keeps them on file storage.
	Streams bus.StreamOptions
	// Logger receives the service's logs; nil means slog.Default(). It is
	// scoped with svc=chat.
	Logger *slog.Logger
	// Concurrency is how many requests this replica processes at once; it
	// also sizes the consumer's MaxAckPending and pull batch. Default
	// [DefaultConcurrency].
	Concurrency int
	// Models is the model catalog; nil means [DefaultModels].
	Models []Model
	// Providers are the upstreams the catalog's models may name, besides
	// the built-in echo.
	Providers []ProviderConfig
	// RetryAttempts is how many times one model is called when it is
	// throttled, failing (5xx) or times out before the first token, before
	// the next of its Fallbacks is tried. Default [DefaultRetryAttempts],
	// at most [MaxRetryAttempts].
	RetryAttempts int
	// RetryBackoff is the first pause between attempts; it doubles up to
	// [MaxRetryBackoff]. Default [DefaultRetryBackoff].
	RetryBackoff time.Duration
	// FirstTokenTimeout bounds the wait for the first token of one
	// attempt; passing it counts as a retryable timeout. Default
	// [DefaultFirstTokenTimeout].
	FirstTokenTimeout time.Duration
	// EchoDelay is the pause between chunks of the echo model, for
	// realistic streaming in development. Default 0.
	EchoDelay time.Duration
	// MeterTimeout bounds the quota reservation of one request. Default
	// [DefaultMeterTimeout].
	MeterTimeout time.Duration
	// CacheTimeout bounds one cache lookup or store. Default
	// [DefaultCacheTimeout].
	CacheTimeout time.Duration
	// AuthzTimeout bounds the model access check of one request (a
	// [bus.ModelCheckRequest] to authz). When authz does not answer in
	// time the request fails closed with internal_error. Default
	// [DefaultAuthzTimeout].
	AuthzTimeout time.Duration
	// DisableCache turns the response cache off (lookups and stores).
	// The zero value caches.
	DisableCache bool
	// CacheIndexMaxKeys bounds this replica's index of the keys the cache
	// bucket holds (about 36 bytes per key), learned from a metadata-only
	// watch of the bucket: a lookup of a key the index has never seen is a
	// miss without asking the cache service, which takes one bus round trip
	// off every new prompt's way to its first token. An answer stored by
	// another replica moments ago may be missed once (until the watch
	// delivers its key); a hit is never wrong, since a key the index holds
	// is always asked for. When the bucket holds more keys the index is
	// dropped and every lookup asks the cache service (a new watch is tried
	// after [keyindex.RetryWhenFull]). Default [DefaultCacheIndexMaxKeys];
	// negative turns the index off.
	CacheIndexMaxKeys int
	// MaxMessages bounds the messages of one request. Default
	// [DefaultMaxMessages].
	MaxMessages int
	// MaxInputBytes bounds the total input of one request: system and
	// message text, tool inputs and results, and tool specifications.
	// Default [DefaultMaxInputBytes].
	MaxInputBytes int
	// MaxOutputTokens caps inferenceConfig.maxTokens for every model on
	// top of each model's own MaxTokens; 0 means the model's MaxTokens.
	MaxOutputTokens int
	// DrainTimeout is how long Run lets in-flight requests finish after
	// its context ends before cancelling them. Default
	// [DefaultDrainTimeout].
	DrainTimeout time.Duration
	// AckWait is how long JetStream waits for the acknowledgement of a
	// pulled request before it gives the request up (it is never
	// redelivered, see [MaxDeliver]) and a replica answers it with
	// internal_error. A request that reaches its worker more than half of
	// AckWait after it was stored is claimed synchronously (deleted from
	// INBOUND) before it runs, so it never runs after it was answered as
	// undelivered. Default [DefaultAckWait], at least 1s.
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
	if c.CacheIndexMaxKeys == 0 {
		c.CacheIndexMaxKeys = DefaultCacheIndexMaxKeys
	}
	if c.AuthzTimeout == 0 {
		c.AuthzTimeout = DefaultAuthzTimeout
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
	if c.RetryAttempts == 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.FirstTokenTimeout == 0 {
		c.FirstTokenTimeout = DefaultFirstTokenTimeout
	}
	c.Providers = slices.Clone(c.Providers)
	for i := range c.Providers {
		if c.Providers[i].MaxConcurrent == 0 {
			c.Providers[i].MaxConcurrent = DefaultProviderConcurrency
		}
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
	case c.AuthzTimeout < 0:
		return fmt.Errorf("%w: AuthzTimeout %s is negative", ErrInvalidConfig, c.AuthzTimeout)
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
	case c.RetryAttempts < 1 || c.RetryAttempts > MaxRetryAttempts:
		return fmt.Errorf("%w: RetryAttempts %d must be within 1..%d", ErrInvalidConfig, c.RetryAttempts, MaxRetryAttempts)
	case c.RetryBackoff < 0:
		return fmt.Errorf("%w: RetryBackoff %s is negative", ErrInvalidConfig, c.RetryBackoff)
	case c.FirstTokenTimeout < 0:
		return fmt.Errorf("%w: FirstTokenTimeout %s is negative", ErrInvalidConfig, c.FirstTokenTimeout)
	}
	names := map[string]string{}
	for i, p := range c.Providers {
		field := fmt.Sprintf("Providers[%d]", i)
		switch {
		case p.Name == "" || p.Name == ProviderEcho:
			return fmt.Errorf("%w: %s.Name %q must be set and not %q", ErrInvalidConfig, field, p.Name, ProviderEcho)
		case names[p.Name] != "":
			return fmt.Errorf("%w: %s.Name %q is used twice", ErrInvalidConfig, field, p.Name)
		case p.Type != ProviderTypeBedrock && p.Type != ProviderTypeOpenAI:
			return fmt.Errorf("%w: %s.Type %q is not %q or %q", ErrInvalidConfig, field, p.Type, ProviderTypeBedrock, ProviderTypeOpenAI)
		case p.Type == ProviderTypeOpenAI && p.BaseURL == "":
			return fmt.Errorf("%w: %s.BaseURL is required for an openai provider", ErrInvalidConfig, field)
		case p.MaxConcurrent < 1:
			return fmt.Errorf("%w: %s.MaxConcurrent %d must be at least 1", ErrInvalidConfig, field, p.MaxConcurrent)
		case p.ImageURLs && p.Type != ProviderTypeOpenAI:
			return fmt.Errorf("%w: %s.ImageURLs is only for openai providers: Bedrock reads image bytes only", ErrInvalidConfig, field)
		}
		names[p.Name] = p.Type
	}
	_, err := newCatalog(c.Models, names)
	return err
}
