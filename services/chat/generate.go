package chat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
)

// errFirstTokenTimeout is the cancellation cause of an attempt whose first
// token did not come within [Config.FirstTokenTimeout].
var errFirstTokenTimeout = errors.New("chat: no first token in time")

// generation is the outcome of [Service.generate].
type generation struct {
	model   *Model    // the model that answered (or the last one tried)
	up      *upstream // its provider
	res     provider.Result
	err     error
	started bool // at least one chunk was emitted
	tries   int  // attempts made, over all models
}

// generate calls the request's model and, when it is throttled, failing
// (5xx) or times out before its first token, retries it with backoff up
// to [Config.RetryAttempts] times and then moves to each of its Fallbacks
// in turn. Once a chunk has been emitted nothing is retried: the client
// has seen part of an answer.
func (s *Service) generate(ctx context.Context, j *job, emit func(provider.Delta) error) generation {
	// Validation ensures the request's own model can serve it; should no
	// model of the chain be able to, this is the answer.
	g := generation{model: j.v.model, up: s.upstreams[j.v.model.Provider], err: &provider.Error{
		Provider: j.v.model.Provider, Kind: provider.KindRejected, Message: "no model of the chain can serve this request",
	}}
	tries := 0
	out, need := outputFormat(j.req), j.v.need
	for _, m := range s.models.chain(j.v.model) {
		up := s.upstreams[m.Provider]
		if c := need.lacking(m); c != "" {
			j.log.Info("fallback skipped: the catalog says it lacks a capability the request needs", "model", m.ID, "capability", c)
			continue
		}
		if out != nil && !provider.SupportsOutput(up.p, out.Type) {
			j.log.Info("fallback skipped: it cannot produce the output format", "model", m.ID, "type", out.Type)
			continue
		}
		if need.imageURL && !provider.FetchesImages(up.p) {
			j.log.Info("fallback skipped: it cannot read images from URLs", "model", m.ID)
			continue
		}
		if !s.honoursEffort(m, j.req.ReasoningEffort) {
			j.log.Info("fallback skipped: it cannot take the reasoning effort", "model", m.ID, "effort", j.req.ReasoningEffort)
			continue
		}
		if p := s.refusedOpenAIParam(m, j.req.OpenAIParams); p != "" {
			j.log.Info("fallback skipped: it cannot take an OpenAI parameter of the request", "model", m.ID, "param", p)
			continue
		}
		call := s.newCall(j, m)
		backoff := s.cfg.RetryBackoff
		for attempt := 1; attempt <= s.cfg.RetryAttempts; attempt++ {
			tries++
			g = generation{model: m, up: up, tries: tries}
			g.res, g.started, g.err = s.attempt(ctx, up, call, emit)
			if g.err == nil || g.started || ctx.Err() != nil || !provider.Retryable(g.err) {
				return g
			}
			j.log.Warn("model failed before its first token", "try", m.ID, "attempt", attempt, "err", g.err)
			if attempt == s.cfg.RetryAttempts {
				break // next fallback, at once
			}
			wait := backoff
			var pe *provider.Error
			if errors.As(g.err, &pe) && pe.RetryAfter > wait {
				wait = pe.RetryAfter
			}
			if !sleep(ctx, min(wait, MaxRetryBackoff)) {
				return g
			}
			backoff = min(backoff*2, MaxRetryBackoff)
		}
	}
	return g
}

// attempt makes one call under the provider's concurrency limit and the
// first-token timeout. It reports whether a chunk was emitted.
func (s *Service) attempt(ctx context.Context, up *upstream, call *provider.Call, emit func(provider.Delta) error) (provider.Result, bool, error) {
	if err := up.acquire(ctx); err != nil {
		return provider.Result{}, false, fmt.Errorf("chat: wait for %s: %w", up.p.Name(), err)
	}
	defer up.release()
	ctx, span := startModelSpan(ctx, up, call)
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(s.cfg.FirstTokenTimeout, func() { cancel(errFirstTokenTimeout) })
	defer timer.Stop()
	started := false
	res, err := up.p.Stream(actx, call, func(d provider.Delta) error {
		if !started {
			started = true
			timer.Stop()
		}
		return emit(d)
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errFirstTokenTimeout) {
		err = &provider.Error{
			Provider: up.p.Name(), Kind: provider.KindUnavailable,
			Message: fmt.Sprintf("no first token within %s", s.cfg.FirstTokenTimeout), Err: err,
		}
	}
	endModelSpan(span, res, err)
	return res, started, err
}

// sleep pauses d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// newCall builds the provider call of a job for model m.
func (s *Service) newCall(j *job, m *Model) *provider.Call {
	upstreamModel := m.UpstreamModel
	if upstreamModel == "" {
		upstreamModel = m.ID
	}
	maxTokens := min(j.v.maxTokens, m.MaxTokens)
	if s.cfg.MaxOutputTokens > 0 {
		maxTokens = min(maxTokens, s.cfg.MaxOutputTokens)
	}
	call := &provider.Call{Model: upstreamModel, System: j.req.System, Messages: j.req.Messages, MaxTokens: maxTokens}
	if ic := j.req.InferenceConfig; ic != nil {
		call.Temperature, call.TopP, call.StopSequences = ic.Temperature, ic.TopP, ic.StopSequences
		call.Seed, call.PresencePenalty, call.FrequencyPenalty = ic.Seed, ic.PresencePenalty, ic.FrequencyPenalty
	}
	call.RequestFields = m.RequestFields
	if e := j.req.ReasoningEffort; e != "" {
		call.ReasoningEffort = e
		if f, ok := s.models.effortFields(m, e); ok {
			call.RequestFields, call.ReasoningMapped = f, true
		}
	}
	call.Tools = j.req.ToolConfig
	call.Output = outputFormat(j.req)
	if p := j.req.OpenAIParams; !p.IsZero() {
		call.OpenAI = p
	}
	if g := m.Guardrail; g != nil {
		call.Guardrail = &provider.Guardrail{ID: g.ID, Version: g.Version, Trace: g.Trace, StreamProcessingMode: g.StreamProcessingMode}
	}
	return call
}
