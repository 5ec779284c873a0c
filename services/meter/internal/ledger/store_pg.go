package ledger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ Store = (*pgStore)(nil)

// pgStore is the Postgres ledger. Tables are created unqualified, so they
// land in the first schema of the connection's search_path (which the URL
// may set with search_path=<schema>).
type pgStore struct {
	pool       *pgxpool.Pool
	parts      sync.Map    // "2006-01-02" -> struct{}: partitions known to exist
	dupsSeen   atomic.Bool // the last batch held request ids already stored
	migrations fs.FS       // root holding dirPG; the embedded files unless a test swaps them
	closeOnce  sync.Once
}

// pgMigrationLock is the advisory lock taken by every migration
// transaction, keyed by schema so replicas migrating the same schema
// serialise while separate schemas do not wait for each other.
const pgMigrationLock = `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse-meter-migrations:' || coalesce(current_schema(), ''), 0))`

const pgCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// pgStageTable is the session-local staging table of InsertBatch: a
// batch is copied into it with binary COPY, then moved into the day
// partitions by [pgInsertDay]. Being TEMP it is unlogged, private to its
// connection (created by openPG's AfterConnect hook) and emptied at every
// commit (or rollback), so it never holds anything across transactions.
// Only usage_records itself is the durable, WAL-logged copy.
const pgStageTable = "gh_usage_stage"

// pgColumns are the columns of usage_records written by InsertBatch, in
// the order of [pgCopyBuf.appendRow] and [pgArraySource].
var pgColumns = []string{"request_id", "sub", "issuer", "tenant", "channel_id", "key_id", "model_id",
	"provider", "conversation_id", "input_tokens", "output_tokens", "total_tokens", "cost_micro_usd",
	"cached", "estimated", "status", "started_at", "finished_at"}

const pgCreateStage = `CREATE TEMP TABLE IF NOT EXISTS ` + pgStageTable + ` (
	request_id      TEXT COLLATE "C" NOT NULL,
	sub             TEXT COLLATE "C" NOT NULL,
	issuer          TEXT COLLATE "C" NOT NULL,
	tenant          TEXT COLLATE "C" NOT NULL,
	channel_id      TEXT NOT NULL,
	key_id          TEXT COLLATE "C" NOT NULL,
	model_id        TEXT COLLATE "C" NOT NULL,
	provider        TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	input_tokens    BIGINT NOT NULL,
	output_tokens   BIGINT NOT NULL,
	total_tokens    BIGINT NOT NULL,
	cost_micro_usd  BIGINT NOT NULL,
	cached          BOOLEAN NOT NULL,
	estimated       BOOLEAN NOT NULL,
	status          TEXT NOT NULL,
	started_at      TIMESTAMPTZ NOT NULL,
	finished_at     TIMESTAMPTZ NOT NULL
) ON COMMIT DELETE ROWS`

// pgCopyMin is the smallest batch InsertBatch stages with COPY. Smaller
// batches are sent as parameter arrays (unnest) in the insert statement
// itself: COPY's extra round trips and the staging table's truncation at
// commit cost more than they save below about a thousand records
// (BenchmarkInsertBatch: batch=100 took 2.0 ms as arrays, 4.0 ms staged).
const pgCopyMin = 1000

// pgStageSource and pgArraySource are the two row sources of
// [pgInsertDay]: the staging table, or the batch as parameter arrays
// $3..$20 in the order of [pgColumns].
const (
	pgStageSource = `pg_temp.` + pgStageTable
	pgArraySource = `unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
	$10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::boolean[], $17::boolean[],
	$18::text[], $19::timestamptz[], $20::timestamptz[]) AS s(request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, estimated, status,
	started_at, finished_at)`
)

// pgInsertDay moves the records of one UTC day, [$1, $2), from the row
// source (the second %s) into that day's partition (the first %s;
// inserting into the partition directly skips the parent's tuple routing,
// and Postgres still checks the partition bound), and adds the rows it
// inserted to the hourly rollups in the same statement. The rollup rows
// are upserted in key order, so concurrent writers lock them in the same
// order and cannot deadlock on them.
//
// The third %s is the conflict clause of the record insert: [pgSkipDuplicates]
// skips request ids already stored (the rollups then count only the rows
// actually inserted), while "" inserts every row and fails the statement
// with a unique violation at the first request id already stored; see
// [pgStore.InsertBatch].
const pgInsertDay = `WITH ins AS (
INSERT INTO %s (request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, estimated, status,
	started_at, finished_at)
SELECT request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, estimated, status,
	started_at, finished_at
FROM %s WHERE finished_at >= $1 AND finished_at < $2
%s
RETURNING tenant, sub, issuer, key_id, model_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, finished_at
), roll AS (
INSERT INTO usage_hourly AS h (hour, tenant, sub, issuer, key_id, model_id, requests, cached, input_tokens,
	output_tokens, total_tokens, cost_micro_usd)
SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
	count(*), count(*) FILTER (WHERE cached), sum(input_tokens), sum(output_tokens), sum(total_tokens), sum(cost_micro_usd)
FROM ins GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (hour, tenant, sub, issuer, key_id, model_id) DO UPDATE SET
	requests = h.requests + EXCLUDED.requests, cached = h.cached + EXCLUDED.cached,
	input_tokens = h.input_tokens + EXCLUDED.input_tokens, output_tokens = h.output_tokens + EXCLUDED.output_tokens,
	total_tokens = h.total_tokens + EXCLUDED.total_tokens, cost_micro_usd = h.cost_micro_usd + EXCLUDED.cost_micro_usd
)
SELECT count(*) FROM ins`

// pgSkipDuplicates is the conflict clause of [pgInsertDay] that skips
// request ids already stored.
const pgSkipDuplicates = `ON CONFLICT (request_id, finished_at) DO NOTHING`

// pgGroupExpr maps a GroupBy value to its SQL expression over a time
// column.
func pgGroupExpr(group, ts string) string {
	switch group {
	case GroupModel:
		return `model_id`
	case GroupUser:
		return `sub`
	case GroupKey:
		return `key_id`
	case GroupHour:
		return `to_char(` + ts + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"')`
	case GroupDay:
		return `to_char(` + ts + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	}
	return `''`
}

func openPG(ctx context.Context, url string) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, pgCreateStage); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger: postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &pgStore{pool: pool, migrations: embedded}, nil
}

func (s *pgStore) Migrate(ctx context.Context) ([]int, error) {
	return runMigrations(ctx, s.migrations, dirPG, s.apply)
}

// apply runs m in one transaction under the migration lock, unless its
// version is already recorded. It reports whether it ran m.
func (s *pgStore) apply(ctx context.Context, m migration) (bool, error) {
	ran := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgMigrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, pgCreateMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.version).Scan(&exists); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		ran = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ledger: postgres migration %s: %w", m.name, err)
	}
	return ran, nil
}

func (s *pgStore) Versions(ctx context.Context) ([]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres versions: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres versions: %w", err)
	}
	return vs, nil
}

// InsertBatch copies recs into the session's staging table (binary
// COPY; batches below [pgCopyMin] go as parameter arrays instead) and
// moves them into their day partitions, one statement per UTC day, all in
// one transaction.
func (s *pgStore) InsertBatch(ctx context.Context, recs []bus.UsageRecord) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	n := len(recs)
	var days []time.Time // distinct UTC days of finished_at, ascending
	for _, r := range recs {
		day := r.FinishedAt.UTC().Truncate(24 * time.Hour)
		if !slices.ContainsFunc(days, day.Equal) {
			days = append(days, day)
		}
	}
	slices.SortFunc(days, time.Time.Compare)
	for _, day := range days {
		if err := s.ensurePartition(ctx, day.Format(time.DateOnly), day); err != nil {
			return 0, fmt.Errorf("ledger: postgres insert %d records: %w", n, err)
		}
	}
	// Redeliveries are rare, so a batch is first inserted without ON
	// CONFLICT: for every record, ON CONFLICT DO NOTHING costs an extra
	// probe of the primary key, a speculative-insertion lock and a
	// confirmation WAL record (10-20 % of the statement's Postgres CPU on
	// the meterbench workload). A duplicate then aborts the attempt with a
	// unique violation (nothing of it is kept, rollups included) and the
	// batch is written again, skipping duplicates. After such a batch the
	// following ones skip duplicates from the start, until one finds none:
	// redeliveries come in runs.
	if !s.dupsSeen.Load() {
		inserted, err := s.insertBatch(ctx, recs, days, "")
		if err == nil {
			return inserted, nil
		}
		if !isUniqueViolation(err) {
			s.forgetPartitions(days)
			return 0, fmt.Errorf("ledger: postgres insert %d records: %w", n, err)
		}
	}
	inserted, err := s.insertBatch(ctx, recs, days, pgSkipDuplicates)
	if err != nil {
		s.forgetPartitions(days)
		return 0, fmt.Errorf("ledger: postgres insert %d records: %w", n, err)
	}
	s.dupsSeen.Store(inserted < int64(n))
	return inserted, nil
}

// insertBatch writes recs in one transaction, one [pgInsertDay] per day
// with conflict clause onConflict, and returns how many it inserted.
func (s *pgStore) insertBatch(ctx context.Context, recs []bus.UsageRecord, days []time.Time, onConflict string) (int64, error) {
	var inserted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		src, args := pgStageSource, []any{nil, nil}
		if len(recs) < pgCopyMin {
			src, args = pgArraySource, append(args, pgArrays(recs)...)
		} else if err := pgCopyStage(ctx, tx, recs); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		for _, day := range days {
			part := pgx.Identifier{"usage_records_p" + day.Format("20060102")}.Sanitize()
			args[0], args[1] = day, day.AddDate(0, 0, 1)
			var k int64
			if err := tx.QueryRow(ctx, fmt.Sprintf(pgInsertDay, part, src, onConflict), args...).Scan(&k); err != nil {
				return fmt.Errorf("insert into %s: %w", part, err)
			}
			inserted += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

// forgetPartitions drops days from the partition cache after a failed
// write: a partition dropped meanwhile (by retention, possibly in another
// replica) is recreated when the batch is retried.
func (s *pgStore) forgetPartitions(days []time.Time) {
	for _, day := range days {
		s.parts.Delete(day.Format(time.DateOnly))
	}
}

// isUniqueViolation reports whether err is a Postgres unique violation
// (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgUniqueViolation
}

// pgUniqueViolation is the SQLSTATE of a unique violation.
const pgUniqueViolation = "23505"

// pgArrays returns recs as the 18 column arrays of [pgArraySource].
func pgArrays(recs []bus.UsageRecord) []any {
	n := len(recs)
	var (
		ids, subs, issuers, tenants, cids = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		kids, models, providers, convs    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ins, outs, totals, costs          = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		cached, estimated                 = make([]bool, n), make([]bool, n)
		statuses                          = make([]string, n)
		started, finished                 = make([]time.Time, n), make([]time.Time, n)
	)
	for i, r := range recs {
		ids[i], subs[i], issuers[i], tenants[i], cids[i] = r.RequestID, r.Sub, r.Issuer, r.Tenant, r.ChannelID
		kids[i], models[i], providers[i], convs[i] = r.KeyID, r.ModelID, r.Provider, r.ConversationID
		ins[i], outs[i], totals[i], costs[i] = r.InputTokens, r.OutputTokens, r.TotalTokens, r.CostMicroUSD
		cached[i], estimated[i], statuses[i] = r.Cached, r.Estimated, r.Status
		started[i], finished[i] = r.StartedAt.UTC(), r.FinishedAt.UTC()
	}
	return []any{ids, subs, issuers, tenants, cids, kids, models, providers, convs,
		ins, outs, totals, costs, cached, estimated, statuses, started, finished}
}

// ensurePartition creates the partition of day (UTC midnight) unless
// this store already knows it exists.
func (s *pgStore) ensurePartition(ctx context.Context, key string, day time.Time) error {
	if _, ok := s.parts.Load(key); ok {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `SELECT gatehouse_ensure_partition($1::date)`, key); err != nil {
		return fmt.Errorf("partition %s: %w", key, err)
	}
	s.parts.Store(key, struct{}{})
	return nil
}

// EnsurePartitions creates the daily partitions of the UTC days from
// now's through days days ahead.
func (s *pgStore) EnsurePartitions(ctx context.Context, now time.Time, days int) error {
	today := now.UTC().Truncate(24 * time.Hour)
	for i := 0; i <= days; i++ {
		day := today.AddDate(0, 0, i)
		if err := s.ensurePartition(ctx, day.Format(time.DateOnly), day); err != nil {
			return fmt.Errorf("ledger: postgres: %w", err)
		}
	}
	return nil
}

// DropPartitionsBefore drops the daily partitions of UTC days before
// cutoff's day (their records, not the rollups) and returns their names.
func (s *pgStore) DropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'usage_records'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres list partitions: %w", err)
	}
	limit := "usage_records_p" + cutoff.UTC().Format("20060102")
	var dropped []string
	for _, name := range names {
		if len(name) != len(limit) || name >= limit {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("ledger: postgres drop partition %s: %w", name, err)
		}
		s.parts.Delete(name[len("usage_records_p"):len("usage_records_p")+4] + "-" + name[len(name)-4:len(name)-2] + "-" + name[len(name)-2:])
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// hourAligned reports whether t is on a whole UTC hour.
func hourAligned(t time.Time) bool { return t.Equal(t.Truncate(time.Hour)) }

func (s *pgStore) Usage(ctx context.Context, q Query) ([]bus.UsageRow, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	// Whole hours are answered from the hourly rollups; anything finer
	// reads the records.
	var sql string
	if hourAligned(q.From) && hourAligned(q.To) {
		sql = `SELECT ` + pgGroupExpr(q.GroupBy, "hour") + ` AS grp, coalesce(sum(requests), 0)::bigint,
	coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint, coalesce(sum(total_tokens), 0)::bigint,
	coalesce(sum(cached), 0)::bigint, coalesce(sum(cost_micro_usd), 0)::bigint
FROM usage_hourly
WHERE ($1::bool OR (sub = $2 AND ($3::text = '' OR issuer = $3::text))) AND hour >= $4 AND hour < $5`
	} else {
		sql = `SELECT ` + pgGroupExpr(q.GroupBy, "finished_at") + ` AS grp, count(*), coalesce(sum(input_tokens), 0)::bigint,
	coalesce(sum(output_tokens), 0)::bigint, coalesce(sum(total_tokens), 0)::bigint,
	count(*) FILTER (WHERE cached), coalesce(sum(cost_micro_usd), 0)::bigint
FROM usage_records
WHERE ($1::bool OR (sub = $2 AND ($3::text = '' OR issuer = $3::text))) AND finished_at >= $4 AND finished_at < $5`
	}
	if q.GroupBy != GroupNone {
		sql += ` GROUP BY grp ORDER BY grp`
	}
	rows, err := s.pool.Query(ctx, sql, q.All, q.Sub, q.Issuer, q.From.UTC(), q.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage: %w", err)
	}
	out := []bus.UsageRow{}
	var (
		g                              string
		n, in, o, totals, cached, cost int64
	)
	_, err = pgx.ForEachRow(rows, []any{&g, &n, &in, &o, &totals, &cached, &cost}, func() error {
		out = append(out, sumRow(g, n, in, o, totals, cached, cost))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage: %w", err)
	}
	return out, nil
}

func (s *pgStore) UsageBuckets(ctx context.Context, f Filter, from time.Time, width time.Duration) ([]Bucket, error) {
	cond, args := f.where(3)
	sql := `SELECT to_timestamp(floor(extract(epoch FROM finished_at) / $1) * $1) AS slot, count(*),
	coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
	coalesce(sum(total_tokens), 0)::bigint, coalesce(sum(cost_micro_usd), 0)::bigint
FROM usage_records WHERE finished_at >= $2 AND ` + cond + ` GROUP BY slot ORDER BY slot`
	rows, err := s.pool.Query(ctx, sql, append([]any{width.Seconds(), from.UTC()}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage buckets: %w", err)
	}
	var (
		out []Bucket
		b   Bucket
	)
	_, err = pgx.ForEachRow(rows, []any{&b.Start, &b.Requests, &b.InputTokens, &b.OutputTokens, &b.TotalTokens, &b.CostMicroUSD}, func() error {
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage buckets: %w", err)
	}
	return out, nil
}

func (s *pgStore) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}
