package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ Store = (*pgStore)(nil)

// pgStore is the Postgres ledger. Tables are created unqualified, so they
// land in the first schema of the connection's search_path (which the URL
// may set with search_path=<schema>).
type pgStore struct {
	pool       *pgxpool.Pool
	migrations fs.FS // root holding dirPG; the embedded files unless a test swaps them
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

// pgInsert inserts a whole batch in one statement from parallel arrays.
const pgInsert = `INSERT INTO usage_records (request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cached, estimated, status,
	started_at, finished_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::boolean[], $14::boolean[],
	$15::text[], $16::timestamptz[], $17::timestamptz[])
ON CONFLICT (request_id) DO NOTHING`

// pgGroupExpr maps a GroupBy value to its SQL expression.
var pgGroupExpr = map[string]string{
	GroupNone:  `''`,
	GroupModel: `model_id`,
	GroupHour:  `to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"')`,
	GroupDay:   `to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
}

func openPG(ctx context.Context, url string) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
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
	ms, err := loadMigrations(s.migrations, dirPG)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		done, err := s.apply(ctx, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
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

func (s *pgStore) InsertBatch(ctx context.Context, recs []bus.UsageRecord) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	n := len(recs)
	var (
		ids, subs, issuers, tenants, cids = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		kids, models, providers, convs    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ins, outs, totals                 = make([]int64, n), make([]int64, n), make([]int64, n)
		cached, estimated                 = make([]bool, n), make([]bool, n)
		statuses                          = make([]string, n)
		started, finished                 = make([]time.Time, n), make([]time.Time, n)
	)
	for i, r := range recs {
		ids[i], subs[i], issuers[i], tenants[i], cids[i] = r.RequestID, r.Sub, r.Issuer, r.Tenant, r.ChannelID
		kids[i], models[i], providers[i], convs[i] = r.KeyID, r.ModelID, r.Provider, r.ConversationID
		ins[i], outs[i], totals[i] = r.InputTokens, r.OutputTokens, r.TotalTokens
		cached[i], estimated[i], statuses[i] = r.Cached, r.Estimated, r.Status
		started[i], finished[i] = r.StartedAt.UTC(), r.FinishedAt.UTC()
	}
	tag, err := s.pool.Exec(ctx, pgInsert, ids, subs, issuers, tenants, cids, kids, models, providers, convs,
		ins, outs, totals, cached, estimated, statuses, started, finished)
	if err != nil {
		return 0, fmt.Errorf("ledger: postgres insert %d records: %w", n, err)
	}
	return tag.RowsAffected(), nil
}

func (s *pgStore) Usage(ctx context.Context, q Query) ([]bus.UsageRow, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	sql := `SELECT ` + pgGroupExpr[q.GroupBy] + ` AS grp, count(*), coalesce(sum(input_tokens), 0)::bigint,
	coalesce(sum(output_tokens), 0)::bigint, coalesce(sum(total_tokens), 0)::bigint
FROM usage_records
WHERE sub = $1 AND ($2::text = '' OR issuer = $2::text) AND finished_at >= $3 AND finished_at < $4`
	if q.GroupBy != GroupNone {
		sql += ` GROUP BY grp ORDER BY grp`
	}
	rows, err := s.pool.Query(ctx, sql, q.Sub, q.Issuer, q.From.UTC(), q.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage: %w", err)
	}
	out := []bus.UsageRow{}
	var (
		g                string
		n, in, o, totals int64
	)
	_, err = pgx.ForEachRow(rows, []any{&g, &n, &in, &o, &totals}, func() error {
		out = append(out, sumRow(g, n, in, o, totals))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres usage: %w", err)
	}
	return out, nil
}

func (s *pgStore) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}
