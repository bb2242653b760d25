package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// statRetention keeps hourly counters: longer than the dashboard's
// longest period.
const statRetention = 400 * 24 * time.Hour

const addStat = `
INSERT INTO {s}.stats (hour, metric, network, event, currency, result, count, sum, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (hour, metric, network, event, currency, result)
DO UPDATE SET count = {s}.stats.count + excluded.count, sum = {s}.stats.sum + excluded.sum`

// AddStats implements store.Stats: one upsert per counter, in one batch.
func (s *Store) AddStats(ctx context.Context, stats []store.Stat) error {
	if len(stats) == 0 {
		return nil
	}
	return s.run(ctx, "adding counters", func(ctx context.Context) error {
		b := &pgx.Batch{}
		for _, st := range stats {
			h := st.Hour.UTC().Truncate(time.Hour)
			b.Queue(s.sql(addStat), h, st.Metric, st.Network, st.Event, st.Currency, st.Result, st.Count, st.Sum, h.Add(statRetention))
		}
		return s.pool.SendBatch(ctx, b).Close()
	})
}

const readStats = `
SELECT hour, metric, network, event, currency, result, count, sum FROM {s}.stats
WHERE hour >= $1 AND hour < $2`

// Stats implements store.Stats.
func (s *Store) Stats(ctx context.Context, since, until time.Time) ([]store.Stat, error) {
	var out []store.Stat
	err := s.run(ctx, "reading counters", func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, s.sql(readStats), since.UTC().Truncate(time.Hour), until.UTC())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st store.Stat
			if err := rows.Scan(&st.Hour, &st.Metric, &st.Network, &st.Event, &st.Currency, &st.Result, &st.Count, &st.Sum); err != nil {
				return err
			}
			st.Hour = st.Hour.UTC()
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}
