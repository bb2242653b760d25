package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

const (
	readMeta   = `SELECT value FROM {s}.meta WHERE name = $1`
	createMeta = `INSERT INTO {s}.meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value`
)

// MetaGetOrCreate returns the value stored under name, storing create's
// value first if there is none. A node that loses the race to create it
// reads the winner's value: its insert waits for the winner's commit and
// then does nothing, and the read after it is a new statement that sees
// the committed row.
func (s *Store) MetaGetOrCreate(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	var value []byte
	err := s.run(ctx, "reading shared settings", func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, s.sql(readMeta), name).Scan(&value)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = s.pool.QueryRow(ctx, s.sql(createMeta), name, create()).Scan(&value)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return s.pool.QueryRow(ctx, s.sql(readMeta), name).Scan(&value)
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
