package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// touchpointRows are touchpoints as the parallel arrays that unnest turns
// into rows.
type touchpointRows struct {
	networks, clickIDs []string
	captured, expires  []time.Time
	records            []string // JSON
	latest             time.Time
}

// newTouchpointRows encodes tps; of touchpoints with the same network and
// click ID, the last one given counts.
func newTouchpointRows(tps []record.Touchpoint) (touchpointRows, error) {
	type key struct{ network, clickID string }
	last := make(map[key]int, len(tps))
	for i, tp := range tps {
		last[key{tp.Network, tp.ClickID}] = i
	}
	var r touchpointRows
	for i, tp := range tps {
		if last[key{tp.Network, tp.ClickID}] != i {
			continue
		}
		b, err := json.Marshal(tp)
		if err != nil {
			return r, fmt.Errorf("encoding a touchpoint: %w", err)
		}
		r.networks = append(r.networks, tp.Network)
		r.clickIDs = append(r.clickIDs, tp.ClickID)
		r.captured = append(r.captured, tp.CapturedAt)
		r.expires = append(r.expires, tp.ExpiresAt)
		r.records = append(r.records, string(b))
		if tp.ExpiresAt.After(r.latest) {
			r.latest = tp.ExpiresAt
		}
	}
	return r, nil
}

// createSession inserts the session and its touchpoints in one statement,
// and returns 1, or 0 when the ID is taken (then nothing is written).
const createSession = `
WITH new_session AS (
	INSERT INTO {s}.sessions (id, created_at, ga_client_id, expires_at)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (id) DO NOTHING
	RETURNING id
), new_touchpoints AS (
	INSERT INTO {s}.touchpoints (session_id, network, click_id, captured_at, expires_at, touchpoint)
	SELECT new_session.id, t.network, t.click_id, t.captured_at, t.expires_at, t.touchpoint::jsonb
	FROM new_session,
		unnest($5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[])
			AS t(network, click_id, captured_at, expires_at, touchpoint)
)
SELECT count(*) FROM new_session`

// CreateSession stores a new session with its first touchpoints in one
// round trip.
func (s *Store) CreateSession(ctx context.Context, sess *record.Session) error {
	rows, err := newTouchpointRows(sess.Touchpoints)
	if err != nil {
		return fmt.Errorf("postgres: creating a session: %w", err)
	}
	return s.run(ctx, "creating a session", func(ctx context.Context) error {
		var created int
		err := s.pool.QueryRow(ctx, s.sql(createSession), sess.ID, sess.CreatedAt, sess.GAClientID, rows.latest,
			rows.networks, rows.clickIDs, rows.captured, rows.expires, rows.records).Scan(&created)
		if err != nil {
			return err
		}
		if created == 0 {
			return store.ErrExists
		}
		return nil
	})
}

// The statements of AddTouchpoints, sent together as one batch: one round
// trip, one implicit transaction. The first locks the session row, so that
// adds to one session run one after the other, and says whether the session
// is live; the others write only when it is.
const (
	lockLiveSession = `
SELECT 1 FROM {s}.sessions
WHERE id = $1 AND EXISTS (SELECT 1 FROM {s}.touchpoints WHERE session_id = $1 AND expires_at > $2)
FOR UPDATE`
	upsertTouchpoints = `
INSERT INTO {s}.touchpoints (session_id, network, click_id, captured_at, expires_at, touchpoint)
SELECT $1, t.network, t.click_id, t.captured_at, t.expires_at, t.touchpoint::jsonb
FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
	AS t(network, click_id, captured_at, expires_at, touchpoint)
WHERE EXISTS (SELECT 1 FROM {s}.touchpoints WHERE session_id = $1 AND expires_at > $2)
ON CONFLICT (session_id, network, click_id) DO UPDATE
SET captured_at = excluded.captured_at, expires_at = excluded.expires_at, touchpoint = excluded.touchpoint`
	// trimTouchpoints removes the session's expired touchpoints and the
	// oldest live ones beyond the cap.
	trimTouchpoints = `
DELETE FROM {s}.touchpoints
WHERE session_id = $1 AND (expires_at <= $2 OR (network, click_id) IN (
	SELECT network, click_id FROM {s}.touchpoints
	WHERE session_id = $1 AND expires_at > $2
	ORDER BY captured_at DESC, network DESC, click_id DESC
	OFFSET $3))`
	updateSession = `
UPDATE {s}.sessions
SET ga_client_id = CASE WHEN $2 = '' THEN ga_client_id ELSE $2 END, expires_at = greatest(expires_at, $3)
WHERE id = $1 AND EXISTS (SELECT 1 FROM {s}.touchpoints WHERE session_id = $1 AND expires_at > $4)`
)

// AddTouchpoints adds touchpoints to a live session in one round trip.
func (s *Store) AddTouchpoints(ctx context.Context, id string, tps []record.Touchpoint, gaClientID string, max int, now time.Time) error {
	rows, err := newTouchpointRows(tps)
	if err != nil {
		return fmt.Errorf("postgres: adding touchpoints: %w", err)
	}
	if max <= 0 {
		max = math.MaxInt32 // no cap
	}
	return s.run(ctx, "adding touchpoints", func(ctx context.Context) error {
		b := &pgx.Batch{}
		live := false
		b.Queue(s.sql(lockLiveSession), id, now).Query(func(rows pgx.Rows) error {
			live = rows.Next()
			rows.Close()
			return rows.Err()
		})
		b.Queue(s.sql(upsertTouchpoints), id, now, rows.networks, rows.clickIDs, rows.captured, rows.expires, rows.records)
		b.Queue(s.sql(trimTouchpoints), id, now, max)
		b.Queue(s.sql(updateSession), id, gaClientID, rows.latest, now)
		if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if !live {
			return store.ErrNotFound
		}
		return nil
	})
}

const readSession = `
SELECT s.created_at, s.ga_client_id, t.touchpoint
FROM {s}.sessions s JOIN {s}.touchpoints t ON t.session_id = s.id
WHERE s.id = $1 AND t.expires_at > $2
ORDER BY t.captured_at, t.network, t.click_id`

// Session returns a session with its live touchpoints, oldest first.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (*record.Session, error) {
	var sess *record.Session
	err := s.run(ctx, "reading a session", func(ctx context.Context) error {
		sess = &record.Session{ID: id}
		rows, err := s.pool.Query(ctx, s.sql(readSession), id, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&sess.CreatedAt, &sess.GAClientID, &raw); err != nil {
				return err
			}
			var tp record.Touchpoint
			if err := json.Unmarshal(raw, &tp); err != nil {
				return fmt.Errorf("decoding a touchpoint: %w", err)
			}
			sess.Touchpoints = append(sess.Touchpoints, tp)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(sess.Touchpoints) == 0 {
			return store.ErrNotFound
		}
		sess.CreatedAt = sess.CreatedAt.UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

const findClicks = `
SELECT session_id, touchpoint FROM {s}.touchpoints
WHERE click_id = $1 AND expires_at > $2
ORDER BY captured_at DESC, session_id DESC
LIMIT $3`

// FindClicks returns the live touchpoints with a click ID, newest first.
func (s *Store) FindClicks(ctx context.Context, clickID string, now time.Time, limit int) ([]store.ClickMatch, error) {
	var out []store.ClickMatch
	err := s.run(ctx, "finding clicks", func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, s.sql(findClicks), clickID, now, store.Limit(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.ClickMatch
			var raw []byte
			if err := rows.Scan(&m.SessionID, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &m.Touchpoint); err != nil {
				return fmt.Errorf("decoding a touchpoint: %w", err)
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}
