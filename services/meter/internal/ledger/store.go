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
	// GroupUser makes one row per user, Group "<sub>".
	GroupUser = "user"
	// GroupKey makes one row per API key id ("" for calls without a key).
	GroupKey = "key"
)

// ValidGroupBy reports whether g is one of the Group* values.
func ValidGroupBy(g string) bool {
	switch g {
	case GroupNone, GroupModel, GroupHour, GroupDay, GroupUser, GroupKey:
		return true
	}
	return false
}

// Query selects usage records of one subject (or, with All, everyone's)
// finished in [From, To).
type Query struct {
	// Sub is the subject whose usage is summed; required unless All.
	Sub string
	// All selects every subject's records (an admin's query); Sub and
	// Issuer are then ignored.
	All bool
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
	case q.Sub == "" && !q.All:
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
	// UsageBuckets sums the records of f finished at or after from per
	// slot of width (aligned to the Unix epoch), ascending by start.
	UsageBuckets(ctx context.Context, f Filter, from time.Time, width time.Duration) ([]Bucket, error)
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
func sumRow(group string, n, in, out, total, cached, cost int64) bus.UsageRow {
	return bus.UsageRow{Group: group, Requests: n, InputTokens: in, OutputTokens: out, TotalTokens: total,
		CachedRequests: cached, CostMicroUSD: cost}
}

// Filter selects the records of one quota subject: exactly one of
// KeyID, Tenant or Sub (with Issuer, "" matching any issuer) is set.
type Filter struct {
	Sub, Issuer, Tenant, KeyID string
}

// Bucket is the usage of one time slot.
type Bucket struct {
	Start        time.Time
	Requests     int64
	InputTokens  int64
	OutputTokens int64
	TotalTokens  int64
	CostMicroUSD int64
}

// where returns f as a SQL condition over usage_records with its
// arguments, numbering placeholders from next (Postgres) or with "?"
// (SQLite, when next is 0).
func (f Filter) where(next int) (string, []any) {
	ph := func(i int) string {
		if next == 0 {
			return "?"
		}
		return fmt.Sprintf("$%d", next+i)
	}
	switch {
	case f.KeyID != "":
		return "key_id = " + ph(0), []any{f.KeyID}
	case f.Tenant != "":
		return "tenant = " + ph(0), []any{f.Tenant}
	case f.Issuer != "":
		return "sub = " + ph(0) + " AND issuer = " + ph(1), []any{f.Sub, f.Issuer}
	default:
		return "sub = " + ph(0), []any{f.Sub}
	}
}

// Partitioned is implemented by stores that partition records by UTC day
// (Postgres). Both methods are safe to call from several replicas at once.
type Partitioned interface {
	// EnsurePartitions creates the partitions of now's day and the days
	// days after it, unless they exist.
	EnsurePartitions(ctx context.Context, now time.Time, days int) error
	// DropPartitionsBefore drops the partitions of days before cutoff's
	// day and returns their names.
	DropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error)
}

var _ Partitioned = (*pgStore)(nil)
