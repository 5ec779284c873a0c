package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/chat/internal/provider"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// job is one validated, acknowledged request.
type job struct {
	who     identity.Identity
	reqID   string
	req     *bus.ChatRequest
	v       validated
	em      *emitter
	log     *slog.Logger
	started time.Time
}

// answer runs a validated request: model authorization, cache lookup, reservation, streaming,
// settlement, the final event, the usage record and the cache store.
//
// ctx ends only when Run's drain grace period is over. Calls to authz,
// meter, cache and JetStream use a context without its cancellation, bounded by
// their own timeouts, so a cancelled answer is still settled and recorded.
func (s *Service) answer(ctx context.Context, j *job) {
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !s.flights.register(j.reqID, j.who.Subject(), cancel, time.Now()) {
		j.log.Warn("request is already running here; dropping the duplicate")
		return
	}
	defer s.flights.unregister(j.reqID)
	bg := context.WithoutCancel(ctx)
	actx, span := startClient(bg, spanAuthorize)
	authorized := s.authorize(actx, j)
	span.End()
	if !authorized {
		failSpan(trace.SpanFromContext(ctx), errTypeNotAuthorized)
		return
	}

	primary := s.upstreams[j.v.model.Provider]
	inTokens, _ := primary.p.InputTokens(s.newCall(j, j.v.model))

	var key string
	var hit *bus.CacheEntry
	if !s.cfg.DisableCache {
		key = bus.CacheKey(bus.CacheScopeUser+":"+j.who.Subject(), j.v.model.ID, *j.req)
		cctx, span := startClient(bg, spanCacheGet)
		absent := s.cacheKeys != nil && s.cacheKeys.Absent(key)
		if !absent {
			hit = s.cacheGet(cctx, key, j.log)
		}
		if span.IsRecording() {
			span.SetAttributes(attribute.Bool(attrCacheHit, hit != nil), attribute.Bool(attrCacheIndexAbsent, absent))
		}
		span.End()
	}

	reserve := bus.ReserveRequest{
		RequestID:       j.reqID,
		Identity:        j.who,
		ModelID:         j.v.model.ID,
		InputTokens:     inTokens,
		MaxOutputTokens: int64(j.v.maxTokens),
		Cached:          hit != nil,
	}
	if hit != nil && hit.Usage.OutputTokens > 0 {
		reserve.MaxOutputTokens = hit.Usage.OutputTokens
	}
	if hit == nil {
		// The most any model of the chain may cost.
		cachePoints, hour := j.v.cache.points > 0, j.v.cache.hour
		for _, m := range s.models.chain(j.v.model) {
			reserve.MaxCostMicroUSD = max(reserve.MaxCostMicroUSD, m.Price.CostMicroUSD(inTokens, 0, 0, 0, reserve.MaxOutputTokens))
			if cachePoints {
				// All the input may be written to the prompt cache, for an
				// hour if a cache point asks for that.
				var hourly int64
				if hour {
					hourly = inTokens
				}
				reserve.MaxCostMicroUSD = max(reserve.MaxCostMicroUSD, m.Price.CostMicroUSD(inTokens, 0, inTokens, 0, reserve.MaxOutputTokens),
					m.Price.CostMicroUSD(inTokens, 0, inTokens, hourly, reserve.MaxOutputTokens))
			}
		}
	}
	rctx, span := startClient(bg, spanReserve)
	granted, ok := s.reserve(rctx, reserve, j)
	span.End()
	if !ok {
		failSpan(trace.SpanFromContext(ctx), errTypeNotReserved)
		return
	}

	// Stream.
	j.em.emit(bus.Event{MessageStart: &bus.MessageStart{Role: "assistant"}})
	collect := !s.cfg.DisableCache && hit == nil
	var text strings.Builder
	var blocks []int // content block indexes in the order they opened
	toolUse := false
	firstDelta := trace.SpanFromContext(ctx)
	emit := func(d provider.Delta) error {
		switch {
		case d.ToolUse != nil:
			toolUse = true
			blocks = append(blocks, d.Index)
		case d.ToolInput == "": // text or reasoning; only text is cached
			if collect {
				text.WriteString(d.Text)
			}
			if !slices.Contains(blocks, d.Index) {
				blocks = append(blocks, d.Index)
			}
		}
		err := j.em.delta(d)
		if firstDelta != nil {
			if firstDelta.IsRecording() {
				firstDelta.AddEvent(eventFirstDeltaPublished)
			}
			firstDelta = nil
		}
		return err
	}
	g := generation{model: j.v.model, up: primary}
	if hit != nil {
		g.res, g.err = replay(genCtx, hit, inTokens, j.v.maxTokens, emit)
	} else {
		// Providers mark usage they had to estimate themselves.
		g = s.generate(genCtx, j, emit)
	}
	res, err := g.res, g.err
	if err != nil && !g.started && hit == nil && genCtx.Err() == nil {
		// Every attempt was refused before producing anything (throttled,
		// failing, rejected): upstreams do not bill that, neither do we.
		res.Usage, res.CachedInputTokens, res.CacheWriteInputTokens = bus.Usage{}, 0, 0
	}
	usage := res.Usage
	usage.Cached = hit != nil
	usage.TotalTokens = usage.InputTokens + usage.OutputTokens
	var cost int64
	if hit == nil {
		cost = g.model.Price.CostMicroUSD(usage.InputTokens, res.CachedInputTokens, res.CacheWriteInputTokens, res.CacheWrite1hInputTokens, usage.OutputTokens)
	}
	status, stopReason := bus.UsageStatusOK, res.StopReason
	switch {
	case err == nil && (stopReason == provider.StopGuardrail || stopReason == provider.StopContentFilter):
		status = bus.UsageStatusError
		j.em.fail(bus.ErrTypeGuardrailIntervened, "the answer was blocked by a content guardrail", map[string]any{"stopReason": stopReason})
	case err == nil:
	case genCtx.Err() != nil:
		status, stopReason = bus.UsageStatusCancelled, provider.StopCancelled
	default:
		status = bus.UsageStatusError
		j.log.Warn("provider failed", "err", err, "tries", g.tries, "afterFirstToken", g.started)
		typ, details := bus.ErrTypeUpstreamError, map[string]any{"model": g.model.ID, "attempts": g.tries}
		var pe *provider.Error
		if errors.As(err, &pe) {
			if pe.Kind == provider.KindThrottled {
				typ = bus.ErrTypeUpstreamThrottled
				details["retryAfterSeconds"] = max(int64(1), int64(pe.RetryAfter/time.Second))
			}
			if pe.Status != 0 {
				details["upstreamStatus"] = pe.Status
			}
		}
		j.em.fail(typ, "the model failed to answer: "+err.Error(), details)
	}
	if status == bus.UsageStatusError {
		failSpan(trace.SpanFromContext(ctx), errTypeNoAnswer)
	} else {
		if len(blocks) == 0 {
			blocks = append(blocks, 0)
		}
		for _, i := range blocks {
			j.em.emit(bus.Event{ContentBlockStop: &bus.ContentBlockStop{ContentBlockIndex: i}})
		}
		j.em.emit(bus.Event{MessageStop: &bus.MessageStop{StopReason: stopReason}})
	}

	// Settle, then the final event with the quota state.
	sctx, span := startClient(bg, spanSettle)
	windows := s.settle(sctx, j, g.model, usage, cost)
	span.End()
	if windows == nil {
		windows = granted.Windows
	}
	if windows == nil {
		windows = []bus.QuotaWindow{}
	}
	// Store a complete answer before the final event, so a caller who has
	// seen the whole answer and asks again gets the cached one. An answer
	// that calls tools is not stored: an entry holds text only.
	if collect && !toolUse && status == bus.UsageStatusOK && stopReason == provider.StopEndTurn {
		pctx, span := startClient(bg, spanCachePut)
		if s.cachePut(pctx, key, bus.CacheEntry{ModelID: g.model.ID, Text: text.String(), Usage: usage, CreatedAt: time.Now().UTC()}, j.log) &&
			s.cacheKeys != nil && !s.cacheKeys.Put(key, time.Now()) {
			s.cacheKeys.Invalidate() // full: ask the cache service rather than miss this key
		}
		span.End()
	}
	if status != bus.UsageStatusError {
		j.em.emit(bus.Event{
			Metadata:   &bus.Metadata{Usage: usage, Metrics: bus.Metrics{LatencyMs: time.Since(j.started).Milliseconds()}},
			TokenUsage: &bus.TokenUsage{Request: usage, Windows: windows},
		})
	}

	s.publishUsage(bg, j, g.model, g.up.p.Name(), usage, cost, status)
	j.log.Debug("answered", "status", status, "stopReason", stopReason, "cached", hit != nil,
		"inputTokens", usage.InputTokens, "outputTokens", usage.OutputTokens)
}

// reserve asks meter for quota. On refusal or failure it publishes the
// error event and reports false: nothing is ever served unmetered.
func (s *Service) reserve(ctx context.Context, req bus.ReserveRequest, j *job) (bus.ReserveResponse, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MeterTimeout)
	defer cancel()
	resp, err := bus.Request[bus.ReserveResponse](ctx, s.nc, s.subj.MeterReserve(), req, nil)
	if err != nil {
		j.log.Warn("quota reservation failed", "err", err)
		j.em.fail(bus.ErrTypeInternal, "metering is unavailable; try again", nil)
		return resp, false
	}
	if !resp.Granted {
		msg, details := refusalMessage(resp.Refusal)
		j.log.Info("quota refused", "reason", msg)
		j.em.fail(bus.ErrTypeQuotaExceeded, msg, details)
		return resp, false
	}
	return resp, true
}

// refusalMessage describes the limit that refused a request.
func refusalMessage(r *bus.QuotaRefusal) (string, map[string]any) {
	if r == nil {
		return "quota exceeded", nil
	}
	msg := fmt.Sprintf("quota exceeded: %s %s %s limit of %d reached (used %d)", r.Scope, r.Window, r.Metric, r.Limit, r.Used)
	if r.ResetsAt != "" {
		msg += "; resets at " + r.ResetsAt
	}
	if r.RetryAfterSeconds > 0 {
		msg += fmt.Sprintf("; retry after %ds", r.RetryAfterSeconds)
	}
	return msg, map[string]any{
		"scope":             r.Scope,
		"window":            r.Window,
		"metric":            r.Metric,
		"used":              r.Used,
		"limit":             r.Limit,
		"resetsAt":          r.ResetsAt,
		"retryAfterSeconds": r.RetryAfterSeconds,
	}
}

// settle replaces the reservation with usage and returns the quota state,
// or nil when meter did not answer (the reservation then expires).
func (s *Service) settle(ctx context.Context, j *job, m *Model, usage bus.Usage, cost int64) []bus.QuotaWindow {
	ctx, cancel := context.WithTimeout(ctx, SettleTimeout)
	defer cancel()
	resp, err := bus.Request[bus.SettleResponse](ctx, s.nc, s.subj.MeterSettle(), bus.SettleRequest{
		RequestID:    j.reqID,
		Identity:     j.who,
		ModelID:      m.ID,
		Usage:        usage,
		CostMicroUSD: cost,
	}, nil)
	if err != nil {
		j.log.Warn("settle failed; the reservation will expire", "err", err)
		return nil
	}
	return resp.Windows
}

// publishUsage records the finished request in the USAGE stream, retrying
// with backoff; the request id de-duplicates retries.
func (s *Service) publishUsage(ctx context.Context, j *job, m *Model, providerName string, usage bus.Usage, cost int64, status string) {
	rec := bus.UsageRecord{
		RequestID:      j.reqID,
		Sub:            j.who.Sub,
		Issuer:         j.who.Issuer,
		Tenant:         j.who.Tenant,
		ChannelID:      j.who.ChannelID,
		KeyID:          j.who.KeyID,
		ModelID:        m.ID,
		Provider:       providerName,
		CostMicroUSD:   cost,
		ConversationID: j.em.convID,
		InputTokens:    usage.InputTokens,
		OutputTokens:   usage.OutputTokens,
		TotalTokens:    usage.TotalTokens,
		Cached:         usage.Cached,
		Estimated:      usage.Estimated,
		Status:         status,
		StartedAt:      j.started.UTC(),
		FinishedAt:     time.Now().UTC(),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		j.log.Error("encode usage record", "err", err)
		return
	}
	subject := s.subj.Usage(j.who.Tenant)
	backoff := UsageRetryBackoff
	for attempt := 1; ; attempt++ {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{bus.HeaderMsgID: {j.reqID}}}
		pctx, cancel := context.WithTimeout(ctx, UsagePublishTimeout)
		_, err := s.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return
		}
		if attempt == UsagePublishAttempts {
			j.log.Error("usage record lost", "err", err, "attempts", attempt,
				"inputTokens", rec.InputTokens, "outputTokens", rec.OutputTokens, "status", status)
			return
		}
		j.log.Warn("publish usage record; retrying", "err", err, "attempt", attempt)
		t := time.NewTimer(backoff)
		<-t.C
		backoff *= 2
	}
}

// cacheGet looks key up; every failure is a miss.
func (s *Service) cacheGet(ctx context.Context, key string, log *slog.Logger) *bus.CacheEntry {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CacheTimeout)
	defer cancel()
	resp, err := bus.Request[bus.CacheGetResponse](ctx, s.nc, s.subj.CacheGet(), bus.CacheGetRequest{Key: key}, nil)
	if err != nil {
		log.Debug("cache lookup failed; treating as a miss", "err", err)
		return nil
	}
	if !resp.Hit || resp.Entry == nil {
		return nil
	}
	return resp.Entry
}

// cachePut stores a finished answer and reports whether it was stored;
// failures are logged.
func (s *Service) cachePut(ctx context.Context, key string, entry bus.CacheEntry, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CacheTimeout)
	defer cancel()
	resp, err := bus.Request[bus.CachePutResponse](ctx, s.nc, s.subj.CachePut(), bus.CachePutRequest{Key: key, Entry: entry}, nil)
	if err != nil {
		log.Debug("cache store failed", "err", err)
		return false
	}
	return resp.Stored
}

// replay streams a cached answer in word chunks, like a model would.
// Usage is the entry's when it is complete; a cancelled replay counts the
// chunks sent.
func replay(ctx context.Context, e *bus.CacheEntry, inTokens int64, maxTokens int, emit func(provider.Delta) error) (provider.Result, error) {
	res := provider.Result{StopReason: provider.StopEndTurn}
	res.Usage.InputTokens = inTokens
	if e.Usage.InputTokens > 0 {
		res.Usage.InputTokens = e.Usage.InputTokens
	}
	var sent int64
	for i, chunk := range provider.SplitWords(e.Text) {
		if i >= maxTokens {
			res.StopReason = provider.StopMaxTokens
			break
		}
		if err := ctx.Err(); err != nil {
			res.Usage.OutputTokens = sent
			return res, fmt.Errorf("replay cached answer: %w", err)
		}
		if err := emit(provider.Delta{Text: chunk}); err != nil {
			res.Usage.OutputTokens = sent
			return res, fmt.Errorf("replay cached answer: %w", err)
		}
		sent++
	}
	res.Usage.OutputTokens = sent
	if e.Usage.OutputTokens > 0 && res.StopReason == provider.StopEndTurn {
		res.Usage.OutputTokens = e.Usage.OutputTokens
	}
	return res, nil
}
