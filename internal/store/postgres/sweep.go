package postgres

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// sweepGrace is how long after its expiry a row is deleted: reads hide it
// from the moment it expires at their caller's clock, and the sweeper,
// which reads the wall clock, leaves it a little longer for callers whose
// clock runs behind.
const sweepGrace = time.Minute

// swept names a table with an expiry and the columns that identify a row.
type swept struct {
	table, key string
}

// sweptTables are the tables the sweeper clears, in the order it clears
// them. Waiting and running deliveries have no expiry.
var sweptTables = []swept{
	{"touchpoints", "session_id, network, click_id"},
	{"sessions", "id"},
	{"markers", "kind, key"},
	{"order_keys", "key"},
	{"orders", "order_id"},
	{"conversions", "id"},
	{"deliveries", "id"},
	{"webhooks", "id"},
	{"stats", "hour, metric, network, event, currency, result"},
}

// sweepBatch deletes up to $2 rows that expired before $1, found through
// the table's expiry index.
const sweepBatch = `
DELETE FROM {s}.%[1]s WHERE (%[2]s) IN (
	SELECT %[2]s FROM {s}.%[1]s WHERE expires_at < $1 LIMIT $2)`

// sweep deletes what expired, table by table, and reports how many rows it
// deleted. It stops at the first error (the next sweep starts over) or when
// the store closes.
func (s *Store) sweep() int {
	cutoff := s.opts.Now().Add(-sweepGrace)
	total := 0
	for _, t := range sweptTables {
		n, _, err := s.sweepTable(t, cutoff)
		total += n
		if err != nil && s.life.Err() == nil {
			s.log.Warn("postgres sweep failed; expired rows stay until the next sweep",
				zap.String("table", t.table), zap.Error(err))
		}
		if err != nil {
			return total
		}
	}
	if total > 0 {
		s.log.Debug("postgres sweep", zap.Int("deleted", total))
	}
	return total
}

// sweepTable deletes the rows of one table that expired before cutoff,
// SweepBatch rows per statement, each statement its own transaction, and
// reports how many rows and statements that took.
func (s *Store) sweepTable(t swept, cutoff time.Time) (deleted, statements int, err error) {
	query := s.sql(fmt.Sprintf(sweepBatch, t.table, t.key))
	for {
		if s.life.Err() != nil {
			return deleted, statements, nil
		}
		ctx, cancel := context.WithTimeout(s.life, s.opts.StatementTimeout)
		tag, err := s.pool.Exec(ctx, query, cutoff, s.opts.SweepBatch)
		cancel()
		if err != nil {
			return deleted, statements, s.fail("sweeping "+t.table, err)
		}
		statements++
		n := int(tag.RowsAffected())
		deleted += n
		if n < s.opts.SweepBatch {
			return deleted, statements, nil
		}
	}
}
