package meter

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter/internal/ledger"
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
	// DefaultAdminGroup is the default [Config.AdminGroup].
	DefaultAdminGroup = "gatehouse-admins"
)

// Config configures the meter service. The zero value plus a SQLitePath
// (or a DatabaseURL) is valid.
type Config struct {
	// Prefix is the subject prefix; "" means bus.DefaultPrefix ("gh").
	Prefix string
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
	// AdminGroup is the identity group whose members may query any
	// user's usage. "" means [DefaultAdminGroup].
	AdminGroup string
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
	if c.AdminGroup == "" {
		c.AdminGroup = DefaultAdminGroup
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
	}
	return nil
}
