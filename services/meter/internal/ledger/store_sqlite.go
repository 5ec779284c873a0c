package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/sqlitewal"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

var _ Store = (*sqliteStore)(nil)

// SQLite tuning. Each is a deliberate bound.
const (
	// SQLiteBusyTimeout is how long a connection waits for a lock held by
	// another connection or process before failing with SQLITE_BUSY.
	SQLiteBusyTimeout = 5 * time.Second
	// SQLiteMaxReaders bounds the read-only connections serving queries.
	SQLiteMaxReaders = 4
)

// sqliteStore is the SQLite ledger (WAL mode). It keeps two handles: a
// writer limited to one connection, so every write transaction is
// serialised in-process and begins IMMEDIATE, and a query-only reader pool.
type sqliteStore struct {
	w, r       *sql.DB
	migrations fs.FS // root holding dirSQLite; the embedded files unless a test swaps them
	closeOnce  sync.Once
	closeErr   error
}

const sqliteCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
)`

const sqliteInsert = `INSERT INTO usage_records (request_id, sub, issuer, tenant, channel_id, key_id, model_id,
	provider, conversation_id, input_tokens, output_tokens, total_tokens, cost_micro_usd, cached, estimated, status,
	started_at, finished_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (request_id) DO NOTHING`

// sqliteGroupExpr maps a GroupBy value to its SQL expression.
var sqliteGroupExpr = map[string]string{
	GroupNone:  `''`,
	GroupModel: `model_id`,
	GroupUser:  `sub`,
	GroupKey:   `key_id`,
	GroupHour:  `strftime('%Y-%m-%dT%H:00:00Z', finished_at / 1000, 'unixepoch')`,
	GroupDay:   `strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch')`,
}

func openSQLite(ctx context.Context, path string) (*sqliteStore, error) {
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("ledger: sqlite path %q must not contain '?'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("ledger: sqlite: %w", err)
		}
	}
	common := fmt.Sprintf("%s?_busy_timeout=%d&_foreign_keys=1", path, SQLiteBusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Open the writer first: it switches the file to WAL before readers attach.
	if err := sqlitewal.Ping(ctx, w, SQLiteBusyTimeout); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("ledger: sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", common+"&_query_only=1")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	r.SetMaxOpenConns(SQLiteMaxReaders)
	return &sqliteStore{w: w, r: r, migrations: embedded}, nil
}

func (s *sqliteStore) Migrate(ctx context.Context) ([]int, error) {
	return runMigrations(ctx, s.migrations, dirSQLite, s.apply)
}

// apply runs m in one IMMEDIATE transaction (which holds the database
// write lock, so concurrent processes serialise), unless its version is
// already recorded. It reports whether it ran m.
func (s *sqliteStore) apply(ctx context.Context, m migration) (ran bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("ledger: sqlite migration %s: %w", m.name, err)
		}
	}()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, sqliteCreateMigrations); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version).Scan(&one); {
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("read schema_migrations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return false, fmt.Errorf("record version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

func (s *sqliteStore) Versions(ctx context.Context) ([]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite versions: %w", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("ledger: sqlite versions: %w", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: sqlite versions: %w", err)
	}
	return vs, nil
}

func (s *sqliteStore) InsertBatch(ctx context.Context, recs []bus.UsageRecord) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	n, err := s.insert(ctx, recs)
	if err != nil {
		return 0, fmt.Errorf("ledger: sqlite insert %d records: %w", len(recs), err)
	}
	return n, nil
}

func (s *sqliteStore) insert(ctx context.Context, recs []bus.UsageRecord) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, sqliteInsert)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	var total int64
	for _, r := range recs {
		res, err := stmt.ExecContext(ctx, r.RequestID, r.Sub, r.Issuer, r.Tenant, r.ChannelID, r.KeyID, r.ModelID,
			r.Provider, r.ConversationID, r.InputTokens, r.OutputTokens, r.TotalTokens, r.CostMicroUSD, boolInt(r.Cached),
			boolInt(r.Estimated), r.Status, r.StartedAt.UnixMilli(), r.FinishedAt.UnixMilli())
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return total, nil
}

func (s *sqliteStore) Usage(ctx context.Context, q Query) ([]bus.UsageRow, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	query := `SELECT ` + sqliteGroupExpr[q.GroupBy] + ` AS grp, count(*), coalesce(sum(input_tokens), 0),
	coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0), coalesce(sum(cached), 0),
	coalesce(sum(cost_micro_usd), 0)
FROM usage_records
WHERE (?5 OR (sub = ?1 AND (?2 = '' OR issuer = ?2))) AND finished_at >= ?3 AND finished_at < ?4`
	if q.GroupBy != GroupNone {
		query += ` GROUP BY grp ORDER BY grp`
	}
	rows, err := s.r.QueryContext(ctx, query, q.Sub, q.Issuer, q.From.UnixMilli(), q.To.UnixMilli(), q.All)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite usage: %w", err)
	}
	defer rows.Close()
	out := []bus.UsageRow{}
	for rows.Next() {
		var (
			g                              string
			n, in, o, totals, cached, cost int64
		)
		if err := rows.Scan(&g, &n, &in, &o, &totals, &cached, &cost); err != nil {
			return nil, fmt.Errorf("ledger: sqlite usage: %w", err)
		}
		out = append(out, sumRow(g, n, in, o, totals, cached, cost))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: sqlite usage: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) UsageBuckets(ctx context.Context, f Filter, from time.Time, width time.Duration) ([]Bucket, error) {
	cond, args := f.where(0)
	w := width.Milliseconds()
	query := `SELECT (finished_at / ?) * ? AS slot, count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
	coalesce(sum(total_tokens), 0), coalesce(sum(cost_micro_usd), 0)
FROM usage_records WHERE finished_at >= ? AND ` + cond + ` GROUP BY slot ORDER BY slot`
	rows, err := s.r.QueryContext(ctx, query, append([]any{w, w, from.UnixMilli()}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite usage buckets: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var (
			b    Bucket
			slot int64
		)
		if err := rows.Scan(&slot, &b.Requests, &b.InputTokens, &b.OutputTokens, &b.TotalTokens, &b.CostMicroUSD); err != nil {
			return nil, fmt.Errorf("ledger: sqlite usage buckets: %w", err)
		}
		b.Start = time.UnixMilli(slot).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: sqlite usage buckets: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
