package quota

import (
	"fmt"
	"sort"
	"time"
)

// Scopes a budget binds. A request is bound by up to one budget of each.
const (
	ScopeKey    = "key"
	ScopeUser   = "user"
	ScopeTenant = "tenant"
)

// Windows of a limit, as named in [bus.QuotaWindow].Window.
const (
	WindowRolling24h = "rolling24h"
	WindowDay        = "day"
	WindowMonth      = "month"
	WindowMinute     = "minute"
)

// Metrics of a limit, as named in [bus.QuotaWindow].Metric.
const (
	MetricRequests     = "requests"
	MetricInputTokens  = "inputTokens"
	MetricOutputTokens = "outputTokens"
	MetricTotalTokens  = "totalTokens"
	MetricSpend        = "spendMicroUSD"
)

// Window geometry and bounds.
const (
	// RollingWindow is the length of the rolling window.
	RollingWindow = 24 * time.Hour
	// BucketWidth is the granularity of the rolling window: usage is
	// summed per bucket and a bucket leaves the window RollingWindow
	// after its start.
	BucketWidth = 10 * time.Minute
	// DefaultReservationTTL is the default [Config.ReservationTTL].
	DefaultReservationTTL = 10 * time.Minute
	// MinReservationTTL and MaxReservationTTL bound [Config.ReservationTTL].
	MinReservationTTL = time.Second
	MaxReservationTTL = 24 * time.Hour
	// MaxPlans bounds how many plans a configuration may declare.
	MaxPlans = 1000
	// MaxAssignments bounds each of the per-user, per-tenant and per-key
	// assignment tables.
	MaxAssignments = 100_000
)

// Limits caps each metric within one window. Zero means no limit on that
// metric; negative values are invalid.
type Limits struct {
	// Requests caps the number of requests.
	Requests int64 `json:"requests,omitempty" yaml:"requests"`
	// InputTokens caps input (prompt) tokens.
	InputTokens int64 `json:"inputTokens,omitempty" yaml:"input_tokens"`
	// OutputTokens caps output (completion) tokens.
	OutputTokens int64 `json:"outputTokens,omitempty" yaml:"output_tokens"`
	// TotalTokens caps input plus output tokens.
	TotalTokens int64 `json:"totalTokens,omitempty" yaml:"total_tokens"`
	// SpendMicroUSD caps spend in millionths of a USD, priced from the
	// model catalog by chat.
	SpendMicroUSD int64 `json:"spendMicroUsd,omitempty" yaml:"spend_micro_usd"`
}

// metricLimit is one non-zero limit of a [Limits].
type metricLimit struct {
	metric string
	limit  int64
}

func (l Limits) list() []metricLimit {
	var out []metricLimit
	for _, m := range []metricLimit{
		{MetricRequests, l.Requests}, {MetricInputTokens, l.InputTokens}, {MetricOutputTokens, l.OutputTokens},
		{MetricTotalTokens, l.TotalTokens}, {MetricSpend, l.SpendMicroUSD},
	} {
		if m.limit > 0 {
			out = append(out, m)
		}
	}
	return out
}

func (l Limits) validate(field string) error {
	for _, m := range []metricLimit{
		{"requests", l.Requests}, {"inputTokens", l.InputTokens}, {"outputTokens", l.OutputTokens},
		{"totalTokens", l.TotalTokens}, {"spendMicroUsd", l.SpendMicroUSD},
	} {
		if m.limit < 0 {
			return fmt.Errorf("%s.%s must not be negative (got %d)", field, m.metric, m.limit)
		}
	}
	return nil
}

// Plan is a named set of limits. Any subset may be set; every limit set
// applies, so the tightest one refuses first.
type Plan struct {
	// Rolling24h limits usage over the last 24 hours, in
	// [BucketWidth] buckets.
	Rolling24h Limits `json:"rolling24h" yaml:"rolling_24h"`
	// Day limits usage per calendar day in [Config.Location].
	Day Limits `json:"day" yaml:"day"`
	// Month limits usage per calendar month in [Config.Location].
	Month Limits `json:"month" yaml:"month"`
	// Minute limits usage per calendar minute (requests per minute).
	Minute Limits `json:"minute" yaml:"minute"`
	// CountCached makes answers served from the cache count against
	// this plan; by default they are free.
	CountCached bool `json:"countCached,omitempty" yaml:"count_cached"`
}

// windowLimit is one limit of a plan.
type windowLimit struct {
	window string
	metricLimit
}

// limits lists the plan's non-zero limits in a stable order.
func (p Plan) limits() []windowLimit {
	var out []windowLimit
	for _, w := range []struct {
		name string
		l    Limits
	}{{WindowRolling24h, p.Rolling24h}, {WindowDay, p.Day}, {WindowMonth, p.Month}, {WindowMinute, p.Minute}} {
		for _, m := range w.l.list() {
			out = append(out, windowLimit{window: w.name, metricLimit: m})
		}
	}
	return out
}

func (p Plan) validate(name string) error {
	for _, w := range []struct {
		field string
		l     Limits
	}{{"rolling24h", p.Rolling24h}, {"day", p.Day}, {"month", p.Month}, {"minute", p.Minute}} {
		if err := w.l.validate("plans." + name + "." + w.field); err != nil {
			return err
		}
	}
	return nil
}

// Assignment names a plan per scope; "" means the scope has no budget.
type Assignment struct {
	// Key is the plan of API keys.
	Key string `json:"key,omitempty" yaml:"key"`
	// User is the plan of users.
	User string `json:"user,omitempty" yaml:"user"`
	// Tenant is the plan of tenants.
	Tenant string `json:"tenant,omitempty" yaml:"tenant"`
}

// Config declares the plans and who is on which.
//
// The plan of a scope is chosen in this order: the explicit assignment
// (Keys[kid], Users[sub], Tenants[tenant]); then, for the caller's own
// scope (the key for API-key callers, otherwise the user), the plan named
// by identity.Plan when it is declared; then Defaults.
type Config struct {
	// Plans maps plan names to plans. No plans means no limits at all.
	Plans map[string]Plan `json:"plans,omitempty"`
	// Defaults names the plan of each scope when nothing more specific
	// applies.
	Defaults Assignment `json:"defaults"`
	// Users maps a user's sub to a plan name.
	Users map[string]string `json:"users,omitempty"`
	// Tenants maps a tenant to a plan name.
	Tenants map[string]string `json:"tenants,omitempty"`
	// Keys maps an API key id to a plan name.
	Keys map[string]string `json:"keys,omitempty"`
	// Location is the time zone of calendar days and months; nil means
	// UTC.
	Location *time.Location `json:"-"`
	// ReservationTTL is how long an unsettled reservation counts before
	// it expires. 0 means [DefaultReservationTTL]; otherwise within
	// [MinReservationTTL, MaxReservationTTL].
	ReservationTTL time.Duration `json:"reservationTTL,omitempty"`
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time `json:"-"`
}

// Enabled reports whether any plan is declared.
func (c Config) Enabled() bool { return len(c.Plans) > 0 }

// Validate reports the first problem, naming the field, wrapped in
// [ErrInvalidConfig].
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if len(c.Plans) > MaxPlans {
		return bad("plans: %d plans, at most %d", len(c.Plans), MaxPlans)
	}
	names := make([]string, 0, len(c.Plans))
	for n := range c.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" {
			return bad("plans: a plan name is empty")
		}
		if err := c.Plans[n].validate(n); err != nil {
			return bad("%v", err)
		}
	}
	known := func(field, plan string) error {
		if _, ok := c.Plans[plan]; plan != "" && !ok {
			return bad("%s names plan %q, which is not declared in plans", field, plan)
		}
		return nil
	}
	for _, a := range []struct{ field, plan string }{
		{"defaults.key", c.Defaults.Key}, {"defaults.user", c.Defaults.User}, {"defaults.tenant", c.Defaults.Tenant},
	} {
		if err := known(a.field, a.plan); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		field string
		m     map[string]string
	}{{"users", c.Users}, {"tenants", c.Tenants}, {"keys", c.Keys}} {
		if len(m.m) > MaxAssignments {
			return bad("%s: %d assignments, at most %d", m.field, len(m.m), MaxAssignments)
		}
		for id, plan := range m.m {
			if id == "" {
				return bad("%s: an id is empty", m.field)
			}
			if plan == "" {
				return bad("%s[%s]: plan name is empty", m.field, id)
			}
			if err := known(m.field+"["+id+"]", plan); err != nil {
				return err
			}
		}
	}
	if c.ReservationTTL != 0 && (c.ReservationTTL < MinReservationTTL || c.ReservationTTL > MaxReservationTTL) {
		return bad("reservationTTL %s is outside %s..%s", c.ReservationTTL, MinReservationTTL, MaxReservationTTL)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.ReservationTTL == 0 {
		c.ReservationTTL = DefaultReservationTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
