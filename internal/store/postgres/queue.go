package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// deliveryColumns are the columns scanDelivery reads, in its order.
const deliveryColumns = `id, conversion_id, network, state, queued_at, next_attempt, owner, lease_until, expires_at,
	tries, attempts, request, reason, delivery`

// immutablePart returns the part of a delivery kept in the delivery column:
// everything but what the columns hold.
func immutablePart(d record.Delivery) record.Delivery {
	d.ID, d.Network, d.State, d.Owner, d.Reason = "", "", "", "", ""
	d.QueuedAt, d.NextAttempt, d.LeaseUntil, d.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	d.Tries, d.Attempts, d.Request = 0, nil, record.Request{}
	return d
}

// scanDelivery reads a delivery from deliveryColumns.
func scanDelivery(row pgx.Row) (record.Delivery, error) {
	var d record.Delivery
	var id, conversionID, network, state, owner, reason string
	var queued time.Time
	var next, lease, expires pgtype.Timestamptz
	var tries int32
	var attempts, request, body []byte
	err := row.Scan(&id, &conversionID, &network, &state, &queued, &next, &owner, &lease, &expires,
		&tries, &attempts, &request, &reason, &body)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return d, fmt.Errorf("decoding a delivery: %w", err)
	}
	if err := json.Unmarshal(attempts, &d.Attempts); err != nil {
		return d, fmt.Errorf("decoding a delivery's attempts: %w", err)
	}
	if err := json.Unmarshal(request, &d.Request); err != nil {
		return d, fmt.Errorf("decoding a delivery's request: %w", err)
	}
	d.ID, d.ConversionID, d.Network, d.State, d.Owner, d.Reason = id, conversionID, network, record.State(state), owner, reason
	d.QueuedAt, d.NextAttempt, d.LeaseUntil, d.ExpiresAt = queued.UTC(), timeOf(next), timeOf(lease), timeOf(expires)
	d.Tries = int(tries)
	return d, nil
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// claim leases the due deliveries of a network, earliest due first, in one
// statement: rows another claimer holds are skipped, not waited for. It also
// reads the earliest due time among the deliveries left waiting; one row is
// returned even when nothing was claimed.
const claim = `
WITH due AS (
	SELECT id FROM {s}.deliveries
	WHERE network = $1 AND state IN ('queued', 'retrying') AND next_attempt <= $2
	ORDER BY next_attempt, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE {s}.deliveries d SET state = 'running', owner = $4, lease_until = $5
	FROM due WHERE d.id = due.id
	RETURNING d.*
), waiting AS (
	SELECT min(next_attempt) AS next_due FROM {s}.deliveries
	WHERE network = $1 AND state IN ('queued', 'retrying') AND id NOT IN (SELECT id FROM due)
)
SELECT waiting.next_due, claimed.id IS NOT NULL, ` + claimedColumns + `
FROM waiting LEFT JOIN claimed ON true
ORDER BY claimed.next_attempt, claimed.id`

// claimedColumns are deliveryColumns of the claimed rows, empty when none
// was claimed.
const claimedColumns = `coalesce(claimed.id, ''), coalesce(claimed.conversion_id, ''), coalesce(claimed.network, ''),
	coalesce(claimed.state, ''), coalesce(claimed.queued_at, 'epoch'), claimed.next_attempt, coalesce(claimed.owner, ''),
	claimed.lease_until, claimed.expires_at, coalesce(claimed.tries, 0), coalesce(claimed.attempts, '[]'),
	coalesce(claimed.request, '{}'), coalesce(claimed.reason, ''), coalesce(claimed.delivery, '{}')`

// Claim leases up to limit due deliveries of network to owner.
func (s *Store) Claim(ctx context.Context, network, owner string, limit int, now, leaseUntil time.Time) ([]record.Delivery, time.Time, error) {
	var out []record.Delivery
	var nextDue time.Time
	err := s.run(ctx, "claiming deliveries", func(ctx context.Context) error {
		out, nextDue = nil, time.Time{}
		rows, err := s.pool.Query(ctx, s.sql(claim), network, now, max(limit, 0), owner, leaseUntil)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var next pgtype.Timestamptz
			var claimed bool
			d, err := scanDelivery(prefixed{rows, []any{&next, &claimed}})
			if err != nil {
				return err
			}
			nextDue = timeOf(next)
			if claimed {
				out = append(out, d)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return out, nextDue, nil
}

// prefixed is a row whose first columns go to dst before the rest is
// scanned.
type prefixed struct {
	row pgx.Row
	dst []any
}

func (p prefixed) Scan(dest ...any) error { return p.row.Scan(append(p.dst, dest...)...) }

// appendAttempt is the attempts column with the attempt in $N appended,
// keeping the first attempt and the latest ones within
// record.MaxAttemptsKept (as record.Delivery.AddAttempt does): a full log
// loses its second entry.
func appendAttempt(param string) string {
	keep := strconv.Itoa(record.MaxAttemptsKept)
	return `CASE WHEN jsonb_array_length(attempts) >= ` + keep + ` THEN (attempts - 1) ELSE attempts END || jsonb_build_array(` + param + `::jsonb)`
}

// The owner-checked state changes of a running delivery.
var (
	complete = `
UPDATE {s}.deliveries
SET state = 'delivered', owner = '', lease_until = NULL, next_attempt = NULL, expires_at = $3,
	tries = tries + 1, attempts = ` + appendAttempt("$4") + `, request = $5
WHERE id = $1 AND state = 'running' AND owner = $2`
	retry = `
UPDATE {s}.deliveries
SET state = 'retrying', owner = '', lease_until = NULL, next_attempt = $3,
	tries = tries + 1, attempts = ` + appendAttempt("$4") + `, request = $5
WHERE id = $1 AND state = 'running' AND owner = $2`
	bury = `
UPDATE {s}.deliveries
SET state = 'dead', owner = '', lease_until = NULL, next_attempt = NULL, expires_at = $3, reason = $6,
	tries = tries + CASE WHEN $4::jsonb IS NULL THEN 0 ELSE 1 END,
	attempts = CASE WHEN $4::jsonb IS NULL THEN attempts ELSE ` + appendAttempt("$4") + ` END,
	request = $5
WHERE id = $1 AND state = 'running' AND owner = $2`
	release = `
UPDATE {s}.deliveries
SET state = CASE WHEN tries > 0 THEN 'retrying' ELSE 'queued' END, owner = '', lease_until = NULL, next_attempt = $3
WHERE id = $1 AND state = 'running' AND owner = $2`
)

// settle runs an owner-checked change: ErrLeaseLost when the delivery is
// not running under owner.
func (s *Store) settle(ctx context.Context, op, query string, args ...any) error {
	return s.run(ctx, op, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.sql(query), args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrLeaseLost
		}
		return nil
	})
}

// Complete records a successful attempt.
func (s *Store) Complete(ctx context.Context, id, owner string, at record.Attempt, request record.Request, keepUntil time.Time) error {
	a, r, err := encodeAttemptRequest(&at, request)
	if err != nil {
		return fmt.Errorf("postgres: completing a delivery: %w", err)
	}
	return s.settle(ctx, "completing a delivery", complete, id, owner, keepUntil, a, r)
}

// Retry records a failed attempt; the delivery waits until next.
func (s *Store) Retry(ctx context.Context, id, owner string, at record.Attempt, request record.Request, next time.Time) error {
	a, r, err := encodeAttemptRequest(&at, request)
	if err != nil {
		return fmt.Errorf("postgres: retrying a delivery: %w", err)
	}
	return s.settle(ctx, "retrying a delivery", retry, id, owner, next, a, r)
}

// Bury records a final failure.
func (s *Store) Bury(ctx context.Context, id, owner string, at *record.Attempt, request record.Request, reason string, keepUntil time.Time) error {
	a, r, err := encodeAttemptRequest(at, request)
	if err != nil {
		return fmt.Errorf("postgres: burying a delivery: %w", err)
	}
	return s.settle(ctx, "burying a delivery", bury, id, owner, keepUntil, a, r, reason)
}

// Release gives a running delivery back, due at due, without counting an
// attempt.
func (s *Store) Release(ctx context.Context, id, owner string, due time.Time) error {
	return s.settle(ctx, "releasing a delivery", release, id, owner, due)
}

// encodeAttemptRequest encodes an attempt (nil stays nil: SQL NULL) and a
// request as JSON.
func encodeAttemptRequest(at *record.Attempt, request record.Request) ([]byte, []byte, error) {
	var a []byte
	if at != nil {
		var err error
		if a, err = json.Marshal(at); err != nil {
			return nil, nil, fmt.Errorf("encoding the attempt: %w", err)
		}
	}
	r, err := json.Marshal(request)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the request: %w", err)
	}
	return a, r, nil
}

// rescue returns a batch of running deliveries whose lease ended to the
// queue; the rows another transaction holds are left for the next pass.
const rescue = `
UPDATE {s}.deliveries
SET state = CASE WHEN tries > 0 THEN 'retrying' ELSE 'queued' END, owner = '', lease_until = NULL, next_attempt = $1
WHERE id IN (
	SELECT id FROM {s}.deliveries
	WHERE state = 'running' AND lease_until < $1
	ORDER BY lease_until
	LIMIT $2
	FOR UPDATE SKIP LOCKED)`

// Rescue returns running deliveries whose lease ended before now to the
// queue, in batches of SweepBatch.
func (s *Store) Rescue(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.run(ctx, "rescuing deliveries", func(ctx context.Context) error {
			tag, err := s.pool.Exec(ctx, s.sql(rescue), now, s.opts.SweepBatch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < int64(s.opts.SweepBatch) {
			return total, nil
		}
	}
}

// Replayed is the reason a replayed delivery carries until its next
// outcome.
const Replayed = "replayed"

// replay queues a dead or delivered delivery again. The first row says
// whether the delivery exists (its state), and the second part whether it
// was replayed.
var replay = `
WITH target AS (
	SELECT id, state FROM {s}.deliveries
	WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)
	FOR UPDATE
), replayed AS (
	UPDATE {s}.deliveries d
	SET state = 'queued', queued_at = $2, next_attempt = $2, expires_at = NULL, owner = '', lease_until = NULL, reason = $3
	FROM target WHERE d.id = target.id AND target.state IN ('dead', 'delivered')
	RETURNING d.*
)
SELECT target.state, replayed.id IS NOT NULL, ` + replayedColumns + `
FROM target LEFT JOIN replayed ON true`

var replayedColumns = strings.ReplaceAll(claimedColumns, "claimed.", "replayed.")

// Replay queues a dead or delivered delivery again, due now.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) (*record.Delivery, error) {
	var d record.Delivery
	err := s.run(ctx, "replaying a delivery", func(ctx context.Context) error {
		var state string
		var replayed bool
		var err error
		d, err = scanDelivery(prefixed{s.pool.QueryRow(ctx, s.sql(replay), id, now, Replayed), []any{&state, &replayed}})
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case !replayed:
			return fmt.Errorf("replaying a %s delivery: %w", state, store.ErrState)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

const replayDead = `
UPDATE {s}.deliveries
SET state = 'queued', queued_at = $2, next_attempt = $2, expires_at = NULL, reason = $3
WHERE network = $1 AND state = 'dead' AND expires_at > $2`

// ReplayDead replays every dead delivery of a network.
func (s *Store) ReplayDead(ctx context.Context, network string, now time.Time) (int, error) {
	var tag pgconn.CommandTag
	err := s.run(ctx, "replaying dead deliveries", func(ctx context.Context) error {
		var err error
		tag, err = s.pool.Exec(ctx, s.sql(replayDead), network, now, Replayed)
		return err
	})
	return int(tag.RowsAffected()), err
}

const readDelivery = `
SELECT ` + deliveryColumns + ` FROM {s}.deliveries WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)`

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string, now time.Time) (*record.Delivery, error) {
	var d record.Delivery
	err := s.run(ctx, "reading a delivery", func(ctx context.Context) error {
		var err error
		d, err = scanDelivery(s.pool.QueryRow(ctx, s.sql(readDelivery), id, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Deliveries lists deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, q store.DeliveryQuery, now time.Time) ([]record.Delivery, string, error) {
	w := where{}
	w.conds = append(w.conds, "(expires_at IS NULL OR expires_at > $1)")
	w.args = append(w.args, now)
	if q.State != "" {
		w.add("state = ?", string(q.State))
	}
	if q.Network != "" {
		w.add("network = ?", q.Network)
	}
	if q.ConversionID != "" {
		w.add("conversion_id = ?", q.ConversionID)
	}
	var out []record.Delivery
	var next string
	err := s.run(ctx, "listing deliveries", func(ctx context.Context) error {
		var err error
		out, next, err = listPage(ctx, s, "SELECT "+deliveryColumns+" FROM {s}.deliveries", w, q.Cursor, q.Limit,
			func(rows pgx.Rows) (record.Delivery, string, error) {
				d, err := scanDelivery(rows)
				return d, d.ID, err
			})
		return err
	})
	return out, next, err
}

const queueStats = `
SELECT network,
	count(*) FILTER (WHERE state = 'queued'),
	count(*) FILTER (WHERE state = 'retrying'),
	count(*) FILTER (WHERE state = 'running'),
	count(*) FILTER (WHERE state = 'dead'),
	min(queued_at) FILTER (WHERE state IN ('queued', 'retrying', 'running')),
	min(next_attempt) FILTER (WHERE state IN ('queued', 'retrying'))
FROM {s}.deliveries
WHERE state IN ('queued', 'retrying', 'running') OR (state = 'dead' AND expires_at > $1)
GROUP BY network
ORDER BY network`

// QueueStats describes every network with deliveries waiting, running or
// dead.
func (s *Store) QueueStats(ctx context.Context, now time.Time) ([]store.NetworkQueue, error) {
	var out []store.NetworkQueue
	err := s.run(ctx, "reading queue statistics", func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, s.sql(queueStats), now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var nq store.NetworkQueue
			var oldest, next pgtype.Timestamptz
			var queued, retrying, running, dead int64
			if err := rows.Scan(&nq.Network, &queued, &retrying, &running, &dead, &oldest, &next); err != nil {
				return err
			}
			nq.Queued, nq.Retrying, nq.Running, nq.Dead = int(queued), int(retrying), int(running), int(dead)
			nq.OldestWaiting, nq.NextDue = timeOf(oldest), timeOf(next)
			out = append(out, nq)
		}
		return rows.Err()
	})
	return out, err
}
