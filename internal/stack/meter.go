package stack

import (
	"log/slog"
	"time"

	"github.com/gatehouse-ai/gatehouse/internal/config"
	"github.com/gatehouse-ai/gatehouse/services/meter"
	"github.com/nats-io/nats.go"
)

func buildMeter(cfg config.Config, nc *nats.Conn, log *slog.Logger) (runner, error) {
	return meter.New(MeterConfig(cfg, log), nc)
}

// MeterConfig maps the configuration to the meter's. An unknown time zone
// (rejected by [config.Config.Validate]) falls back to UTC.
func MeterConfig(cfg config.Config, log *slog.Logger) meter.Config {
	m := cfg.Meter
	mc := meter.Config{
		Prefix:          cfg.NATS.Prefix,
		Streams:         StreamOptions(cfg.NATS),
		Logger:          log,
		DatabaseURL:     m.DatabaseURL,
		BatchSize:       m.BatchSize,
		FlushInterval:   m.FlushInterval,
		LedgerWriters:   m.LedgerWriters,
		RetentionDays:   m.RetentionDays,
		PartitionsAhead: m.PartitionsAhead,
		Quota: meter.QuotaConfig{
			Defaults:       meter.Assignment{Key: m.DefaultPlans.Key, User: m.DefaultPlans.User, Tenant: m.DefaultPlans.Tenant},
			Users:          m.UserPlans,
			Tenants:        m.TenantPlans,
			Keys:           m.KeyPlans,
			ReservationTTL: m.ReservationTTL,
		},
	}
	if mc.DatabaseURL == "" {
		mc.SQLitePath = cfg.SQLitePath()
	}
	if m.TimeZone != "" {
		if loc, err := time.LoadLocation(m.TimeZone); err == nil {
			mc.Quota.Location = loc
		}
	}
	if len(m.Plans) > 0 {
		mc.Quota.Plans = make(map[string]meter.Plan, len(m.Plans))
		for name, p := range m.Plans {
			mc.Quota.Plans[name] = meter.Plan{
				Rolling24h:  limits(p.Rolling24h),
				Day:         limits(p.Day),
				Month:       limits(p.Month),
				Minute:      limits(p.Minute),
				CountCached: p.CountCached,
			}
		}
	}
	return mc
}

func limits(l config.QuotaLimits) meter.Limits {
	return meter.Limits{Requests: l.Requests, InputTokens: l.InputTokens, OutputTokens: l.OutputTokens,
		TotalTokens: l.TotalTokens, SpendMicroUSD: l.SpendMicroUSD}
}
