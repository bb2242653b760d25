package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// where collects the conditions of a listing; each ? becomes the next
// numbered parameter. Only the filters given appear in the statement, so
// that each combination gets a plan that uses its index.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1))
}

// listPage runs a listing, newest first by ID, from after cursor: it reads
// one row more than the page holds to know whether another page follows,
// and returns the page and the next page's cursor (its last ID, or "" after
// the last page). scan reads one row and returns the item and its ID.
func listPage[T any](ctx context.Context, s *Store, selectFrom string, w where, cursor string, limit int,
	scan func(pgx.Rows) (T, string, error)) ([]T, string, error) {
	limit = store.Limit(limit)
	if cursor != "" {
		w.add("id < ?", cursor)
	}
	query := selectFrom
	if len(w.conds) > 0 {
		query += " WHERE " + strings.Join(w.conds, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.pool.Query(ctx, s.sql(query), w.args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []T
	var ids []string
	for rows.Next() {
		item, id, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, item)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) <= limit {
		return out, "", nil
	}
	return out[:limit], ids[limit-1], nil
}
