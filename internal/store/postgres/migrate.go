package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// migrationFiles are the schema's migrations, named NNNN_what.sql; NNNN is
// the version. A migration, once released, never changes: a change to the
// schema is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one versioned step of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with its version, as 0001_", base)
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", base, err)
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// lockKey is the advisory lock that serialises migrations of one schema
// across nodes; other schemas in the database migrate independently.
func (s *Store) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("caddy-postback migrations " + s.opts.Schema))
	return int64(h.Sum64())
}

// migrate applies the migrations not applied yet, in one transaction that
// holds a transaction-scoped advisory lock: nodes that start together wait
// for each other, and each migration is applied once. A migration that fails
// leaves nothing behind.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("migrating", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey()); err != nil {
		return s.fail("migrating: taking the migration lock", err)
	}
	setup := s.sql(`CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`)
	if _, err := tx.Exec(ctx, setup); err != nil {
		return s.fail("migrating: creating the schema", err)
	}
	rows, err := tx.Query(ctx, s.sql("SELECT version FROM {s}.schema_migrations"))
	if err != nil {
		return s.fail("migrating: reading the applied versions", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return s.fail("migrating: reading the applied versions", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[int(v)] = true
	}
	var done []string
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		// Without arguments, Exec uses the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, s.sql(m.sql)); err != nil {
			return s.fail("migrating: applying "+m.name, err)
		}
		if _, err := tx.Exec(ctx, s.sql("INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)"), m.version, m.name); err != nil {
			return s.fail("migrating: recording "+m.name, err)
		}
		done = append(done, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail("migrating: committing", err)
	}
	if len(done) > 0 {
		s.log.Info("postgres schema migrated", zap.String("schema", s.opts.Schema), zap.Strings("applied", done))
	}
	return nil
}
