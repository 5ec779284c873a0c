package meter

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ingest"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/quota"
)

// Quota configuration types; see the quota package documentation on each.
type (
	// QuotaConfig declares plans, who is on which, the calendar time
	// zone, the reservation expiry and the clock.
	QuotaConfig = quota.Config
	// Plan is a named set of limits over rolling, daily, monthly and
	// per-minute windows.
	Plan = quota.Plan
	// Limits caps requests, tokens and spend within one window.
	Limits = quota.Limits
	// Assignment names a plan per scope (key, user, tenant).
	Assignment = quota.Assignment
)

// Defaults and bounds of [Config].
const (
	// DefaultBatchSize is the default [Config.BatchSize].
	DefaultBatchSize = 500
	// MaxBatchSize bounds [Config.BatchSize]: one transaction and one
	// pull never carry more records.
	MaxBatchSize = 10_000
	// DefaultFlushInterval is the default [Config.FlushInterval].
	DefaultFlushInterval = 200 * time.Millisecond
	// MinFlushInterval and MaxFlushInterval bound [Config.FlushInterval].
	// The maximum stays far below [AckWait].
	MinFlushInterval = 10 * time.Millisecond
	MaxFlushInterval = 5 * time.Second
	// DefaultLedgerWriters is the default [Config.LedgerWriters].
	DefaultLedgerWriters = ingest.DefaultWriters
	// MaxLedgerWriters bounds [Config.LedgerWriters].
	MaxLedgerWriters = ingest.MaxWriters
	// DefaultAdminGroup is the default [Config.AdminGroup].
	DefaultAdminGroup = "gatehouse-admins"
	// DefaultPartitionsAhead is the default [Config.PartitionsAhead].
	DefaultPartitionsAhead = 3
	// MaxPartitionsAhead bounds [Config.PartitionsAhead].
	MaxPartitionsAhead = 60
	// MaxRetentionDays bounds [Config.RetentionDays] (ten years).
	MaxRetentionDays = 3660
	// DefaultMaintenanceInterval is the default [Config.MaintenanceInterval].
	DefaultMaintenanceInterval = time.Hour
	// MinMaintenanceInterval and MaxMaintenanceInterval bound
	// [Config.MaintenanceInterval].
	MinMaintenanceInterval = time.Second
	MaxMaintenanceInterval = 24 * time.Hour
)

// Config configures the meter service. The zero value plus a SQLitePath
// (or a DatabaseURL) is valid.
type Config struct {
	// Prefix is the subject prefix; "" means bus.DefaultPrefix ("gh").
	Prefix string
	// Streams are the options of the streams the meter declares at start
	// (USAGE, which it consumes, and INBOUND). Every process that declares
	// them must use the same; the zero value keeps them on file storage.
	Streams bus.StreamOptions
	// Logger receives the service's logs, scoped with svc=meter; nil
	// means slog.Default().
	Logger *slog.Logger
	// DatabaseURL selects Postgres when it is a postgres:// or
	// postgresql:// URL (pgx syntax; search_path=<schema> may be given as
	// a query parameter and the ledger tables are created there). ""
	// selects SQLite at SQLitePath. Any other value is invalid.
	DatabaseURL string
	// SQLitePath is the SQLite ledger file, created (with its directory)
	// if missing. Required when DatabaseURL is "", ignored otherwise.
	SQLitePath string
	// BatchSize is the most usage records written in one ledger
	// transaction (and pulled at once). 0 means [DefaultBatchSize]; at
	// most [MaxBatchSize].
	BatchSize int
	// FlushInterval is the longest a usage record waits for its batch to
	// fill before the batch is written anyway. 0 means
	// [DefaultFlushInterval]; otherwise within [MinFlushInterval,
	// MaxFlushInterval]. Shutdown waits at most this long for the last
	// pull.
	FlushInterval time.Duration
	// LedgerWriters is how many usage batches one replica writes to the
	// ledger at once, each in its own transaction; the next batch is
	// pulled and decoded while they write. 0 means
	// [DefaultLedgerWriters]; at most [MaxLedgerWriters].
	LedgerWriters int
	// AdminGroup is the identity group whose members may query any
	// user's usage. "" means [DefaultAdminGroup].
	AdminGroup string
	// Quota declares the plans enforced by reserve and settle. No plans
	// means every reservation is granted (no windows are reported).
	Quota QuotaConfig
	// PartitionsAhead is how many daily ledger partitions beyond today
	// exist at any time (Postgres only). 0 means
	// [DefaultPartitionsAhead]; at most [MaxPartitionsAhead].
	PartitionsAhead int
	// RetentionDays drops ledger partitions (Postgres) whose whole UTC day
	// is older than this many days; hourly rollups are kept. 0 keeps
	// records forever; at most [MaxRetentionDays].
	RetentionDays int
	// MaintenanceInterval is how often partitions are created ahead and
	// expired ones dropped. 0 means [DefaultMaintenanceInterval];
	// otherwise within [MinMaintenanceInterval, MaxMaintenanceInterval].
	MaintenanceInterval time.Duration
}

// withDefaults returns c with every zero field defaulted.
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = bus.DefaultPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.LedgerWriters == 0 {
		c.LedgerWriters = DefaultLedgerWriters
	}
	if c.AdminGroup == "" {
		c.AdminGroup = DefaultAdminGroup
	}
	if c.PartitionsAhead == 0 {
		c.PartitionsAhead = DefaultPartitionsAhead
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = DefaultMaintenanceInterval
	}
	return c
}

// Validate reports the first invalid field, wrapped in [ErrInvalidConfig].
// Zero values that have defaults are valid.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Prefix != "" && !bus.ValidPrefix(c.Prefix):
		return bad("prefix %q is not dot-separated tokens of [A-Za-z0-9_-]", c.Prefix)
	case c.DatabaseURL != "" && !ledger.IsPostgresURL(c.DatabaseURL):
		return bad("databaseURL must start with postgres:// or postgresql:// (or be empty for SQLite)")
	case c.DatabaseURL == "" && c.SQLitePath == "":
		return bad("sqlitePath is required when databaseURL is empty")
	case c.DatabaseURL == "" && strings.ContainsRune(c.SQLitePath, '?'):
		return bad("sqlitePath %q must not contain '?'", c.SQLitePath)
	case c.BatchSize < 0 || c.BatchSize > MaxBatchSize:
		return bad("batchSize %d is outside 1..%d", c.BatchSize, MaxBatchSize)
	case c.FlushInterval != 0 && (c.FlushInterval < MinFlushInterval || c.FlushInterval > MaxFlushInterval):
		return bad("flushInterval %s is outside %s..%s", c.FlushInterval, MinFlushInterval, MaxFlushInterval)
	case c.LedgerWriters < 0 || c.LedgerWriters > MaxLedgerWriters:
		return bad("ledgerWriters %d is outside 1..%d", c.LedgerWriters, MaxLedgerWriters)
	case c.PartitionsAhead < 0 || c.PartitionsAhead > MaxPartitionsAhead:
		return bad("partitionsAhead %d is outside 0..%d", c.PartitionsAhead, MaxPartitionsAhead)
	case c.RetentionDays < 0 || c.RetentionDays > MaxRetentionDays:
		return bad("retentionDays %d is outside 0..%d", c.RetentionDays, MaxRetentionDays)
	case c.MaintenanceInterval != 0 && (c.MaintenanceInterval < MinMaintenanceInterval || c.MaintenanceInterval > MaxMaintenanceInterval):
		return bad("maintenanceInterval %s is outside %s..%s", c.MaintenanceInterval, MinMaintenanceInterval, MaxMaintenanceInterval)
	}
	if err := c.Quota.Validate(); err != nil {
		return fmt.Errorf("%w: quota: %w", ErrInvalidConfig, err)
	}
	return nil
}
