package ledger

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/pg/*.sql migrations/sqlite/*.sql
var embedded embed.FS

// Dialect directories inside the embedded migrations.
const (
	dirPG     = "migrations/pg"
	dirSQLite = "migrations/sqlite"
)

// migration is one versioned SQL file, "NNNN_description.sql".
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads dir of fsys, sorted by version. Every file must be
// named <positive version>_<name>.sql and versions must be unique.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrBadMigration, dir, err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("%w: %s is not named <version>_<name>.sql", ErrBadMigration, name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: version %d used by %s and %s", ErrBadMigration, v, prev, name)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrBadMigration, name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no migrations in %s", ErrBadMigration, dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// runMigrations applies, in version order, every migration of dir in fsys
// with apply, which reports whether it ran one (false: already applied).
// It returns the versions it ran.
func runMigrations(ctx context.Context, fsys fs.FS, dir string, apply func(context.Context, migration) (bool, error)) ([]int, error) {
	ms, err := loadMigrations(fsys, dir)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		done, err := apply(ctx, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
}
