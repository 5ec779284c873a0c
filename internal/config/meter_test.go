package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMeterPlans(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.yaml")
	yml := `meter:
  time_zone: Europe/Berlin
  reservation_ttl: 2m
  retention_days: 90
  plans:
    free:
      rolling_24h: {total_tokens: 100000}
      day: {requests: 500}
      month: {spend_micro_usd: 5000000}
      minute: {requests: 20}
    team:
      month: {input_tokens: 1000000, output_tokens: 500000}
      count_cached: true
  default_plans: {user: free, tenant: team}
  user_plans: {alice: team}
  key_plans: {key-1: free}
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"GATEHOUSE_METER__PLANS__FREE__MINUTE__REQUESTS=30"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := cfg.Meter
	if m.Plans["free"].Rolling24h.TotalTokens != 100000 || m.Plans["free"].Minute.Requests != 30 ||
		!m.Plans["team"].CountCached || m.DefaultPlans.Tenant != "team" || m.UserPlans["alice"] != "team" ||
		m.ReservationTTL != 2*time.Minute || m.TimeZone != "Europe/Berlin" || m.RetentionDays != 90 {
		t.Errorf("plans not loaded: %+v", m)
	}

	bad := Default()
	bad.Meter.Plans = map[string]QuotaPlan{"p": {Day: QuotaLimits{TotalTokens: -5}}}
	bad.Meter.DefaultPlans.User = "gold"
	bad.Meter.KeyPlans = map[string]string{"k1": "silver"}
	bad.Meter.TimeZone = "Mars/Olympus"
	bad.Meter.ReservationTTL = time.Millisecond
	bad.Meter.RetentionDays = -1
	err = bad.Validate()
	for _, want := range []string{
		"meter.plans.p.day.total_tokens: must not be negative",
		`meter.default_plans.user: plan "gold" is not declared`,
		`meter.key_plans.k1: plan "silver" is not declared`,
		`meter.time_zone: "Mars/Olympus"`,
		"meter.reservation_ttl: 1ms is outside 1s..24h",
		"meter.retention_days: must not be negative",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to say %q", err, want)
		}
	}
}
