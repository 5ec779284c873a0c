package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Group-by values of a usage [Query].
const (
	// GroupNone sums everything into one row with an empty Group.
	GroupNone = ""
	// GroupModel makes one row per model id.
	GroupModel = "model"
	// GroupHour makes one row per UTC hour, Group "2006-01-02T15:00:00Z".
	GroupHour = "hour"
	// GroupDay makes one row per UTC day, Group "2006-01-02".
	GroupDay = "day"
)

// ValidGroupBy reports whether g is one of the Group* values.
func ValidGroupBy(g string) bool {
	switch g {
	case GroupNone, GroupModel, GroupHour, GroupDay:
		return true
	}
	return false
}

// Query selects usage records of one subject finished in [From, To).
type Query struct {
	// Sub is the subject whose usage is summed; required.
	Sub string
	// Issuer restricts the records to one issuer; "" matches any issuer.
	Issuer string
	// From is the inclusive start of the range.
	From time.Time
	// To is the exclusive end of the range.
	To time.Time
	// GroupBy is one of the Group* values.
	GroupBy string
}

func (q Query) validate() error {
	switch {
	case q.Sub == "":
		return fmt.Errorf("%w: sub is required", ErrBadQuery)
	case !ValidGroupBy(q.GroupBy):
		return fmt.Errorf("%w: unknown groupBy %q", ErrBadQuery, q.GroupBy)
	case !q.To.After(q.From):
		return fmt.Errorf("%w: to must be after from", ErrBadQuery)
	}
	return nil
}

// Store is the usage ledger. Implementations are safe for concurrent use;
// writes are serialised by the database.
type Store interface {
	// Migrate applies every embedded migration not yet recorded in
	// schema_migrations, each in its own transaction, and returns the
	// versions it applied (none when the schema is current).
	Migrate(ctx context.Context) ([]int, error)
	// Versions lists the applied migration versions in ascending order.
	Versions(ctx context.Context) ([]int, error)
	// InsertBatch stores recs in one transaction; records whose request id
	// is already stored are skipped. It returns how many rows were new.
	InsertBatch(ctx context.Context, recs []bus.UsageRecord) (int64, error)
	// Usage sums the records selected by q, grouped by q.GroupBy, ordered
	// by group. With GroupNone it always returns exactly one row.
	Usage(ctx context.Context, q Query) ([]bus.UsageRow, error)
	// Close releases the database handles. It is idempotent.
	Close() error
}

// IsPostgresURL reports whether url selects the Postgres store.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Open returns the Postgres store when databaseURL is a postgres:// URL,
// or the SQLite store at sqlitePath when databaseURL is empty. It checks
// that the database is reachable but does not migrate.
func Open(ctx context.Context, databaseURL, sqlitePath string) (Store, error) {
	switch {
	case IsPostgresURL(databaseURL):
		return openPG(ctx, databaseURL)
	case databaseURL != "":
		return nil, fmt.Errorf("%w: want postgres:// or postgresql://", ErrUnsupportedURL)
	case sqlitePath == "":
		return nil, ErrNoSQLitePath
	default:
		return openSQLite(ctx, sqlitePath)
	}
}

// sumRow is the row scanned by both dialects' usage queries.
func sumRow(group string, n, in, out, total int64) bus.UsageRow {
	return bus.UsageRow{Group: group, Requests: n, InputTokens: in, OutputTokens: out, TotalTokens: total}
}
