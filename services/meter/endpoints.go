package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/nats-io/nats.go/micro"
)

// Request bounds.
const (
	// MaxUsageRange is the longest To - From of a usage query.
	MaxUsageRange = 400 * 24 * time.Hour
	// MaxRequestIDLen bounds the requestId of reserve and settle.
	MaxRequestIDLen = 256
	// QuotaTimeout bounds one reserve or settle decision.
	QuotaTimeout = 5 * time.Second
)

// Endpoint names of the micro service.
const (
	EndpointReserve = "reserve"
	EndpointSettle  = "settle"
	EndpointUsage   = "usage"
)

// addService registers the micro service and its endpoints.
func (s *Service) addService() (micro.Service, error) {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "Gatehouse quotas (reserve/settle) and usage queries",
		QueueGroup:  bus.QueueMeter,
	})
	if err != nil {
		return nil, fmt.Errorf("meter: add micro service: %w", err)
	}
	endpoints := []struct {
		name, subject string
		handle        func(context.Context, []byte) (any, error)
	}{
		{EndpointReserve, s.subj.MeterReserve(), s.reserve},
		{EndpointSettle, s.subj.MeterSettle(), s.settle},
		{EndpointUsage, s.subj.MeterUsage(), s.usage},
	}
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.name, s.handler(e.name, e.handle), micro.WithEndpointSubject(e.subject)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("meter: add endpoint %s: %w", e.name, err)
		}
	}
	return svc, nil
}

// handler adapts handle to micro: it joins the caller's trace (a server
// span), holds the read lock so shutdown waits for it, and maps errors to
// codes.
func (s *Service) handler(name string, handle func(context.Context, []byte) (any, error)) micro.Handler {
	return bus.TraceHandler(context.Background(), "meter", name, func(ctx context.Context, req micro.Request) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed {
			_ = req.Error(bus.CodeUnavailable, "meter is shutting down", nil)
			return
		}
		resp, err := handle(ctx, req.Data())
		switch {
		case err == nil:
			bus.Respond(req, resp)
		case errors.Is(err, ErrBadRequest):
			_ = req.Error(bus.CodeBadRequest, err.Error(), nil)
		case errors.Is(err, ErrForbidden):
			_ = req.Error(bus.CodeForbidden, err.Error(), nil)
		default:
			s.log.Error("meter request failed", "endpoint", name, "err", err)
			_ = req.Error(bus.CodeInternal, "meter: internal error", nil)
		}
	})
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return badRequest("invalid JSON: %v", err)
	}
	return nil
}

// problems collects what is wrong with a request; its error names every
// bad field on one line (micro carries the description in a header).
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return badRequest("%s", strings.Join(p, "; "))
}

func (p *problems) requestID(id string) {
	switch {
	case id == "":
		p.addf("requestId is required")
	case len(id) > MaxRequestIDLen:
		p.addf("requestId is longer than %d bytes", MaxRequestIDLen)
	}
}

func (p *problems) identity(id identity.Identity) {
	if id.Sub == "" {
		p.addf("identity.sub is required")
	}
}

func (p *problems) nonNegative(field string, n int64) {
	if n < 0 {
		p.addf("%s must not be negative (got %d)", field, n)
	}
}

// validateReserve checks a reserve request: requestId and identity.sub
// are required and token counts must not be negative.
func validateReserve(r bus.ReserveRequest) error {
	var p problems
	p.requestID(r.RequestID)
	p.identity(r.Identity)
	p.nonNegative("inputTokens", r.InputTokens)
	p.nonNegative("maxOutputTokens", r.MaxOutputTokens)
	p.nonNegative("maxCostMicroUsd", r.MaxCostMicroUSD)
	return p.err()
}

// validateSettle checks a settle request: requestId and identity.sub are
// required and usage token counts must not be negative.
func validateSettle(r bus.SettleRequest) error {
	var p problems
	p.requestID(r.RequestID)
	p.identity(r.Identity)
	p.nonNegative("usage.inputTokens", r.Usage.InputTokens)
	p.nonNegative("usage.outputTokens", r.Usage.OutputTokens)
	p.nonNegative("usage.totalTokens", r.Usage.TotalTokens)
	p.nonNegative("costMicroUsd", r.CostMicroUSD)
	return p.err()
}

// validateUsageQuery checks a usage query: identity.sub, from and to are
// required, to must be after from and at most [MaxUsageRange] later, and
// groupBy must be "", "model", "hour", "day", "user" or "key".
func validateUsageQuery(q bus.UsageQuery) error {
	var p problems
	p.identity(q.Identity)
	switch {
	case q.From.IsZero():
		p.addf("from is required")
	case q.To.IsZero():
		p.addf("to is required")
	case !q.To.After(q.From):
		p.addf("to must be after from")
	case q.To.Sub(q.From) > MaxUsageRange:
		p.addf("to - from must be at most %d days", int(MaxUsageRange/(24*time.Hour)))
	}
	if !ledger.ValidGroupBy(q.GroupBy) {
		p.addf(`groupBy %q is not one of "", "model", "hour", "day", "user", "key"`, q.GroupBy)
	}
	return p.err()
}

func (s *Service) reserve(ctx context.Context, data []byte) (any, error) {
	var r bus.ReserveRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	if err := validateReserve(r); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, QuotaTimeout)
	defer cancel()
	return s.quota.Reserve(ctx, r)
}

func (s *Service) settle(ctx context.Context, data []byte) (any, error) {
	var r bus.SettleRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	if err := validateSettle(r); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, QuotaTimeout)
	defer cancel()
	return s.quota.Settle(ctx, r)
}

// AllUsers is the UsageQuery.Sub with which an admin asks for every
// user's usage.
const AllUsers = "*"

// usage answers a usage query. Callers see their own usage (their sub
// and issuer); members of [Config.AdminGroup] and Gatehouse services
// (the operator CLI holds NATS credentials) may name any Sub, matched
// across issuers, or [AllUsers].
func (s *Service) usage(ctx context.Context, data []byte) (any, error) {
	var q bus.UsageQuery
	if err := decode(data, &q); err != nil {
		return nil, err
	}
	if err := validateUsageQuery(q); err != nil {
		return nil, err
	}
	lq := ledger.Query{Sub: q.Identity.Sub, Issuer: q.Identity.Issuer, From: q.From, To: q.To, GroupBy: q.GroupBy}
	if q.Sub != "" && q.Sub != q.Identity.Sub {
		if q.Identity.Kind != identity.KindService && !q.Identity.InGroup(s.cfg.AdminGroup) {
			return nil, fmt.Errorf("%w: only members of group %q may query another user's usage", ErrForbidden, s.cfg.AdminGroup)
		}
		lq.Sub, lq.Issuer = q.Sub, ""
		lq.All = q.Sub == AllUsers
	}
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	rows, err := s.store.Usage(ctx, lq)
	if err != nil {
		return nil, err
	}
	return bus.UsageResponse{Rows: rows}, nil
}
