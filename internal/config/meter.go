package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // meter.time_zone must resolve in minimal containers without /usr/share/zoneinfo
)

// Meter configures the ledger and the quota plans.
type Meter struct {
	// DatabaseURL selects Postgres ("postgres://..."); also read from
	// DATABASE_URL. Empty uses SQLite at SQLitePath. Secret: masked in output.
	DatabaseURL string `yaml:"database_url"`
	// SQLitePath is the SQLite ledger file. Default DataDir/ledger.db.
	SQLitePath string `yaml:"sqlite_path"`
	// BatchSize is the most records per ledger transaction. Default 500.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for its batch. Default 200ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// LedgerWriters is how many batches one meter replica writes to the
	// ledger at once. 0 means the meter default (1); at most 8.
	LedgerWriters int `yaml:"ledger_writers"`
	// RetentionDays drops Postgres ledger partitions older than this many
	// days (hourly rollups are kept). 0 keeps records forever.
	RetentionDays int `yaml:"retention_days"`
	// PartitionsAhead is how many daily Postgres partitions exist beyond
	// today. 0 means the meter default (3).
	PartitionsAhead int `yaml:"partitions_ahead"`

	// Plans declares quota plans by name. No plans: no limits.
	Plans map[string]QuotaPlan `yaml:"plans"`
	// DefaultPlans names the plan of each scope when nothing more
	// specific applies ("" = no budget for that scope).
	DefaultPlans QuotaAssignment `yaml:"default_plans"`
	// UserPlans, TenantPlans and KeyPlans assign plans to a user's sub, a
	// tenant and an API key id. Otherwise a caller's identity plan (its
	// token's plan claim) applies to the caller's own scope, then
	// DefaultPlans.
	UserPlans   map[string]string `yaml:"user_plans"`
	TenantPlans map[string]string `yaml:"tenant_plans"`
	KeyPlans    map[string]string `yaml:"key_plans"`
	// TimeZone is the IANA zone of calendar days and months. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// ReservationTTL is how long an unsettled reservation counts. 0 means
	// the meter default (10m); otherwise 1s..24h.
	ReservationTTL time.Duration `yaml:"reservation_ttl"`
}

// QuotaPlan is a named set of limits; zero means no limit.
type QuotaPlan struct {
	// Rolling24h limits the last 24 hours (10-minute buckets).
	Rolling24h QuotaLimits `yaml:"rolling_24h"`
	// Day limits each calendar day in TimeZone.
	Day QuotaLimits `yaml:"day"`
	// Month limits each calendar month in TimeZone.
	Month QuotaLimits `yaml:"month"`
	// Minute limits each calendar minute (requests per minute).
	Minute QuotaLimits `yaml:"minute"`
	// CountCached makes cached answers count against the plan.
	CountCached bool `yaml:"count_cached"`
}

// QuotaLimits caps each metric within one window; zero means no limit.
type QuotaLimits struct {
	Requests      int64 `yaml:"requests"`
	InputTokens   int64 `yaml:"input_tokens"`
	OutputTokens  int64 `yaml:"output_tokens"`
	TotalTokens   int64 `yaml:"total_tokens"`
	SpendMicroUSD int64 `yaml:"spend_micro_usd"`
}

// QuotaAssignment names a plan per scope.
type QuotaAssignment struct {
	Key    string `yaml:"key"`
	User   string `yaml:"user"`
	Tenant string `yaml:"tenant"`
}

func (m Meter) validate() []error {
	var errs []error
	if m.DatabaseURL != "" && !strings.HasPrefix(m.DatabaseURL, "postgres://") && !strings.HasPrefix(m.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("meter.database_url: must start with postgres:// (leave empty for SQLite)"))
	}
	if m.BatchSize < 1 {
		errs = append(errs, errors.New("meter.batch_size: must be at least 1"))
	}
	if m.FlushInterval <= 0 {
		errs = append(errs, errors.New("meter.flush_interval: must be above 0"))
	}
	if m.LedgerWriters < 0 || m.LedgerWriters > 8 {
		errs = append(errs, fmt.Errorf("meter.ledger_writers: must be within 0..8 (got %d)", m.LedgerWriters))
	}
	if m.RetentionDays < 0 {
		errs = append(errs, fmt.Errorf("meter.retention_days: must not be negative (got %d)", m.RetentionDays))
	}
	if m.PartitionsAhead < 0 {
		errs = append(errs, fmt.Errorf("meter.partitions_ahead: must not be negative (got %d)", m.PartitionsAhead))
	}
	if m.TimeZone != "" {
		if _, err := time.LoadLocation(m.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("meter.time_zone: %q is not a known IANA time zone", m.TimeZone))
		}
	}
	if m.ReservationTTL != 0 && (m.ReservationTTL < time.Second || m.ReservationTTL > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("meter.reservation_ttl: %s is outside 1s..24h", m.ReservationTTL))
	}
	names := make([]string, 0, len(m.Plans))
	for n := range m.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := m.Plans[n]
		for _, w := range []struct {
			key string
			l   QuotaLimits
		}{{"rolling_24h", p.Rolling24h}, {"day", p.Day}, {"month", p.Month}, {"minute", p.Minute}} {
			for _, f := range []struct {
				key string
				v   int64
			}{{"requests", w.l.Requests}, {"input_tokens", w.l.InputTokens}, {"output_tokens", w.l.OutputTokens},
				{"total_tokens", w.l.TotalTokens}, {"spend_micro_usd", w.l.SpendMicroUSD}} {
				if f.v < 0 {
					errs = append(errs, fmt.Errorf("meter.plans.%s.%s.%s: must not be negative (got %d)", n, w.key, f.key, f.v))
				}
			}
		}
	}
	known := func(key, plan string) {
		if _, ok := m.Plans[plan]; plan != "" && !ok {
			errs = append(errs, fmt.Errorf("%s: plan %q is not declared in meter.plans", key, plan))
		}
	}
	known("meter.default_plans.key", m.DefaultPlans.Key)
	known("meter.default_plans.user", m.DefaultPlans.User)
	known("meter.default_plans.tenant", m.DefaultPlans.Tenant)
	for _, a := range []struct {
		key string
		m   map[string]string
	}{{"meter.user_plans", m.UserPlans}, {"meter.tenant_plans", m.TenantPlans}, {"meter.key_plans", m.KeyPlans}} {
		ids := make([]string, 0, len(a.m))
		for id := range a.m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			known(a.key+"."+id, a.m[id])
		}
	}
	return errs
}
