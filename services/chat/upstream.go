package chat

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/nats-io/nats.go/micro"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// upstream is a provider with its concurrency limit. slots is a semaphore
// of [ProviderConfig.MaxConcurrent] entries (nil for echo: unbounded).
type upstream struct {
	p     provider.Provider
	slots chan struct{}
	// genAI is the gen_ai.provider.name of its spans.
	genAI string
}

// acquire takes a slot, waiting until one is free or ctx ends.
func (u *upstream) acquire(ctx context.Context) error {
	if u.slots == nil {
		return nil
	}
	select {
	case u.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release returns a slot taken by acquire.
func (u *upstream) release() {
	if u.slots != nil {
		<-u.slots
	}
}

// newUpstreams builds echo and every configured provider. Loading the AWS
// configuration reads environment variables and shared files only; no
// request is made until the first call.
func newUpstreams(cfg Config) (map[string]*upstream, error) {
	ups := map[string]*upstream{ProviderEcho: {p: &provider.Echo{Delay: cfg.EchoDelay}, genAI: genAIEcho}}
	for i, pc := range cfg.Providers {
		var p provider.Provider
		switch pc.Type {
		case ProviderTypeOpenAI:
			client := pc.HTTPClient
			if client == nil {
				client = upstreamHTTPClient(pc.MaxConcurrent)
			}
			p = &provider.OpenAI{ProviderName: pc.Name, BaseURL: pc.BaseURL, APIKey: pc.APIKey, Client: client, ImageURLs: pc.ImageURLs}
		case ProviderTypeBedrock:
			var awsCfg aws.Config
			if pc.AWS != nil {
				awsCfg = pc.AWS.Copy()
			} else {
				var opts []func(*awsconfig.LoadOptions) error
				if pc.Region != "" {
					opts = append(opts, awsconfig.WithRegion(pc.Region))
				}
				c, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
				if err != nil {
					return nil, fmt.Errorf("%w: Providers[%d] (%s): load AWS configuration: %w", ErrInvalidConfig, i, pc.Name, err)
				}
				awsCfg = c
			}
			if pc.Region != "" {
				awsCfg.Region = pc.Region
			}
			if awsCfg.Region == "" {
				return nil, fmt.Errorf("%w: Providers[%d] (%s): no AWS region: set Region or AWS_REGION", ErrInvalidConfig, i, pc.Name)
			}
			p = &provider.Bedrock{ProviderName: pc.Name, Client: provider.NewBedrockClient(awsCfg, pc.BaseURL, pc.MaxConcurrent)}
		default:
			return nil, fmt.Errorf("%w: Providers[%d].Type %q is unknown", ErrInvalidConfig, i, pc.Type)
		}
		ups[pc.Name] = &upstream{p: p, slots: make(chan struct{}, pc.MaxConcurrent), genAI: genAIProvider(pc.Type)}
	}
	return ups, nil
}

// upstreamIdleTimeout is how long an idle upstream connection is kept.
const upstreamIdleTimeout = 90 * time.Second

// upstreamHTTPClient is the HTTP client of an openai provider: keeps up to
// maxConns idle connections to the upstream so that streams reuse them
// (the default keeps 2, which makes every request beyond a handshake).
// Calls are bounded by their context, not by a client timeout.
func upstreamHTTPClient(maxConns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxConns
	t.MaxIdleConnsPerHost = maxConns
	t.IdleConnTimeout = upstreamIdleTimeout
	return &http.Client{Transport: t}
}

// serveModels adds the micro endpoint answering [bus.Subjects.ChatModels]
// with the catalog.
func (s *Service) serveModels() (micro.Service, error) {
	resp := bus.ModelsResponse{Models: make([]bus.ModelInfo, 0, len(s.models.models))}
	for _, m := range s.models.models {
		resp.Models = append(resp.Models, bus.ModelInfo{
			ID:                          m.ID,
			Aliases:                     m.Aliases,
			Provider:                    m.Provider,
			ContextWindow:               m.ContextWindow,
			DefaultMaxTokens:            m.DefaultMaxTokens,
			MaxTokens:                   m.MaxTokens,
			InputPerMillion:             m.Price.InputPerMillion,
			OutputPerMillion:            m.Price.OutputPerMillion,
			CachedInputPerMillion:       m.Price.CachedInputPerMillion,
			CacheWriteInputPerMillion:   m.Price.CacheWriteInputPerMillion,
			CacheWrite1hInputPerMillion: m.Price.CacheWrite1hInputPerMillion,
			Fallbacks:                   m.Fallbacks,
			Capabilities:                &bus.ModelCapabilities{Vision: !m.NoVision, Tools: !m.NoTools},
		})
	}
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        "gatehouse-chat",
		Version:     "1.0.0",
		Description: "Gatehouse chat: model catalog",
		QueueGroup:  bus.QueueChat,
	})
	if err != nil {
		return nil, fmt.Errorf("chat: add micro service: %w", err)
	}
	err = svc.AddEndpoint("models", bus.TraceHandler(context.Background(), "chat", "models", func(_ context.Context, r micro.Request) { bus.Respond(r, resp) }),
		micro.WithEndpointSubject(s.subj.ChatModels()))
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("chat: add models endpoint: %w", err)
	}
	return svc, nil
}
