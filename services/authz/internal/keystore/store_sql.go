package keystore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/sqlitewal"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Database settings. Each is a deliberate bound.
const (
	// SQLiteBusyTimeout is how long a SQLite connection waits for a lock
	// held by another connection or process (the meter shares the file).
	SQLiteBusyTimeout = 5 * time.Second
	// MaxPGConns bounds the Postgres connections of one authz replica.
	MaxPGConns = 8
	// MaxListKeys is the most keys one List returns.
	MaxListKeys = 1000
)

//go:embed migrations/pg/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPG
)

// sqlStore is the [Store] over database/sql, for SQLite (modernc) and
// Postgres (pgx). Times are stored as Unix milliseconds (0 = unset) and
// lists as JSON text, so both dialects share one set of queries.
type sqlStore struct {
	db        *sql.DB
	dialect   dialect
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*sqlStore)(nil)

// Open opens the key store and applies its migrations: Postgres when
// databaseURL is set (postgres:// or postgresql://), else the SQLite file
// at sqlitePath (created with its directory when missing).
func Open(ctx context.Context, databaseURL, sqlitePath string) (Store, error) {
	var s *sqlStore
	switch {
	case strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://"):
		db, err := sql.Open("pgx", databaseURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
		}
		db.SetMaxOpenConns(MaxPGConns)
		s = &sqlStore{db: db, dialect: dialectPG}
	case databaseURL != "":
		return nil, fmt.Errorf("%w: %q must start with postgres://", ErrUnsupportedURL, scheme(databaseURL))
	case sqlitePath == "":
		return nil, fmt.Errorf("%w: neither a database URL nor a SQLite path", ErrUnsupportedURL)
	default:
		if strings.ContainsRune(sqlitePath, '?') {
			return nil, fmt.Errorf("%w: sqlite path %q must not contain '?'", ErrUnsupportedURL, sqlitePath)
		}
		if err := os.MkdirAll(filepath.Dir(sqlitePath), 0o750); err != nil {
			return nil, fmt.Errorf("keystore: sqlite: %w", err)
		}
		dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_txlock=immediate", sqlitePath, SQLiteBusyTimeout.Milliseconds())
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("keystore: sqlite: %w", err)
		}
		db.SetMaxOpenConns(1) // one writer; key look-ups are cached above
		s = &sqlStore{db: db, dialect: dialectSQLite}
	}
	// The first SQLite connection may find the meter switching the shared
	// file to WAL: sqlitewal.Ping waits that out.
	if err := sqlitewal.Ping(ctx, s.db, SQLiteBusyTimeout); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("keystore: connect: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

func scheme(u string) string {
	if i := strings.Index(u, "://"); i > 0 {
		return u[:i+3] + "..."
	}
	return "(no scheme)"
}

// q rewrites ? placeholders to $n for Postgres.
func (s *sqlStore) q(query string) string {
	if s.dialect != dialectPG {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// migrate applies the embedded migrations not yet recorded in
// authz_schema_migrations, each in its own transaction. On Postgres an
// advisory lock serialises replicas; on SQLite the IMMEDIATE transaction does.
func (s *sqlStore) migrate(ctx context.Context) error {
	dir := "migrations/sqlite"
	if s.dialect == dialectPG {
		dir = "migrations/pg"
	}
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMigration, err)
	}
	type mig struct {
		version int
		sql     string
	}
	var migs []mig
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return fmt.Errorf("%w: %s is not named <version>_<name>.sql", ErrBadMigration, e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadMigration, err)
		}
		migs = append(migs, mig{v, string(b)})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS authz_schema_migrations (
	version    BIGINT PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`); err != nil {
		// Two Postgres replicas may race on CREATE TABLE IF NOT EXISTS; the
		// loser sees a unique violation and the table exists either way.
		if s.dialect != dialectPG || !strings.Contains(err.Error(), "23505") {
			return fmt.Errorf("keystore: create migrations table: %w", err)
		}
	}
	for _, m := range migs {
		if err := s.apply(ctx, m.version, m.sql); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) apply(ctx context.Context, version int, stmt string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.dialect == dialectPG {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse-authz-migrations:' || coalesce(current_schema(), ''), 0))`); err != nil {
			return fmt.Errorf("keystore: migration lock: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM authz_schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return fmt.Errorf("keystore: migrate: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%w: version %d: %v", ErrBadMigration, version, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_schema_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("keystore: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: migrate: %w", err)
	}
	return nil
}

const columns = `id, hash, name, owner, issuer, tenant, plan, groups_json, models_json, namespaces_json,
	created_by, created_at, expires_at, last_used_at, revoked_at, revoke_reason`

func (s *sqlStore) Create(ctx context.Context, r Record) error {
	groups, models, namespaces, err := encodeLists(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO authz_api_keys (`+columns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Hash, r.Name, r.Owner, r.Issuer, r.Tenant, r.Plan, groups, models, namespaces,
		r.CreatedBy, ms(r.CreatedAt), ms(r.ExpiresAt), ms(r.LastUsedAt), ms(r.RevokedAt), r.RevokeReason)
	if err != nil {
		return fmt.Errorf("keystore: create: %w", err)
	}
	return nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (Record, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+columns+` FROM authz_api_keys WHERE id = ?`), id)
	r, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r, err
}

func (s *sqlStore) List(ctx context.Context, f Filter) ([]Record, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxListKeys {
		limit = MaxListKeys
	}
	query := `SELECT ` + columns + ` FROM authz_api_keys WHERE (? = '' OR owner = ?)`
	if !f.IncludeRevoked {
		query += ` AND revoked_at = 0`
	}
	query += ` ORDER BY created_at DESC, id LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.q(query), f.Owner, f.Owner, limit)
	if err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Revoke(ctx context.Context, id, reason string, at time.Time) (Record, error) {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE authz_api_keys SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0`),
		ms(at), reason, id); err != nil {
		return Record{}, fmt.Errorf("keystore: revoke: %w", err)
	}
	return s.Get(ctx, id)
}

func (s *sqlStore) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: last used: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt := s.q(`UPDATE authz_api_keys SET last_used_at = ? WHERE id = ? AND last_used_at < ?`)
	for id, at := range used {
		if _, err := tx.ExecContext(ctx, stmt, ms(at), id, ms(at)); err != nil {
			return fmt.Errorf("keystore: last used: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: last used: %w", err)
	}
	return nil
}

func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Record, error) {
	var (
		r                                   Record
		groups, models, namespaces          string
		created, expires, lastUsed, revoked int64
	)
	err := row.Scan(&r.ID, &r.Hash, &r.Name, &r.Owner, &r.Issuer, &r.Tenant, &r.Plan, &groups, &models, &namespaces,
		&r.CreatedBy, &created, &expires, &lastUsed, &revoked, &r.RevokeReason)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("keystore: read: %w", err)
	}
	for _, l := range []struct {
		raw string
		dst *[]string
	}{{groups, &r.Groups}, {models, &r.Models}, {namespaces, &r.Namespaces}} {
		if err := json.Unmarshal([]byte(l.raw), l.dst); err != nil {
			return Record{}, fmt.Errorf("keystore: read %s: %w", r.ID, err)
		}
		if len(*l.dst) == 0 {
			*l.dst = nil
		}
	}
	r.CreatedAt, r.ExpiresAt, r.LastUsedAt, r.RevokedAt = fromMS(created), fromMS(expires), fromMS(lastUsed), fromMS(revoked)
	return r, nil
}

func encodeLists(r Record) (groups, models, namespaces string, err error) {
	enc := func(l []string) string {
		if l == nil {
			l = []string{}
		}
		b, e := json.Marshal(l)
		if e != nil {
			err = e
		}
		return string(b)
	}
	return enc(r.Groups), enc(r.Models), enc(r.Namespaces), err
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
