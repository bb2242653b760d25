package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// The statements of an erasure, in one transaction. Deleting the session
// row first waits for an AddTouchpoints of the session that holds it.
const (
	eraseSession     = `DELETE FROM {s}.sessions WHERE id = $1`
	eraseTouchpoints = `DELETE FROM {s}.touchpoints WHERE session_id = $1`
	lockConversions  = `SELECT id, conversion FROM {s}.conversions WHERE session_id = $1 FOR UPDATE`
	writeConversions = `
UPDATE {s}.conversions c SET session_id = '', conversion = u.conversion::jsonb
FROM unnest($1::text[], $2::text[]) AS u(id, conversion) WHERE c.id = u.id`
	lockOrders  = `SELECT order_id, entry FROM {s}.orders WHERE session_id = $1 FOR UPDATE`
	writeOrders = `
UPDATE {s}.orders o SET session_id = $3, entry = u.entry::jsonb
FROM unnest($1::text[], $2::text[]) AS u(order_id, entry) WHERE o.order_id = u.order_id`
	lockDeliveries = `SELECT ` + deliveryColumns + ` FROM {s}.deliveries WHERE conversion_id = ANY($1) ORDER BY id FOR UPDATE`
	// writeDeliveries stores scrubbed deliveries; those that waited or ran
	// are buried (cancel is true).
	writeDeliveries = `
UPDATE {s}.deliveries d SET
	delivery = u.delivery::jsonb, request = u.request::jsonb, attempts = u.attempts::jsonb,
	state = CASE WHEN u.cancel THEN 'dead' ELSE d.state END,
	reason = CASE WHEN u.cancel THEN $6 ELSE d.reason END,
	owner = CASE WHEN u.cancel THEN '' ELSE d.owner END,
	lease_until = CASE WHEN u.cancel THEN NULL ELSE d.lease_until END,
	next_attempt = CASE WHEN u.cancel THEN NULL ELSE d.next_attempt END,
	expires_at = CASE WHEN u.cancel THEN $7 ELSE d.expires_at END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[]) AS u(id, delivery, request, attempts, cancel)
WHERE d.id = u.id`
)

// EraseSession removes a session and every copy of its personal data in one
// transaction: its touchpoints are deleted; the touchpoints copied into its
// conversions, its order entries and their deliveries are scrubbed; its
// conversions are no longer tied to it, its order entries keep
// record.Erased as their session (so that no other visitor takes the
// orders), and the deliveries that wait or run are buried with
// store.ReasonErased.
func (s *Store) EraseSession(ctx context.Context, id string, now, keepDeadUntil time.Time) (bool, error) {
	defer s.erased.Store(true)
	var found bool
	err := s.inTx(ctx, "erasing a session", func(ctx context.Context, tx pgx.Tx) error {
		sess, err := tx.Exec(ctx, s.sql(eraseSession), id)
		if err != nil {
			return fmt.Errorf("deleting the session: %w", err)
		}
		tps, err := tx.Exec(ctx, s.sql(eraseTouchpoints), id)
		if err != nil {
			return fmt.Errorf("deleting touchpoints: %w", err)
		}
		found = sess.RowsAffected()+tps.RowsAffected() > 0
		conversions, err := s.scrubConversions(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.scrubOrders(ctx, tx, id); err != nil {
			return err
		}
		return s.scrubDeliveries(ctx, tx, conversions, keepDeadUntil)
	})
	return found, err
}

// scrubConversions scrubs the credits of a session's conversions, unties
// them from the session and returns their IDs.
func (s *Store) scrubConversions(ctx context.Context, tx pgx.Tx, sessionID string) ([]string, error) {
	var ids, bodies []string
	rows, err := tx.Query(ctx, s.sql(lockConversions), sessionID)
	if err != nil {
		return nil, fmt.Errorf("reading the session's conversions: %w", err)
	}
	for rows.Next() {
		var id string
		var raw []byte
		var c record.Conversion
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the session's conversions: %w", err)
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decoding a conversion: %w", err)
		}
		c.SessionID = ""
		for i := range c.Credits {
			c.Credits[i].Touchpoint.Scrub()
		}
		body, err := encodeJSON(c)
		if err != nil {
			rows.Close()
			return nil, err
		}
		ids, bodies = append(ids, id), append(bodies, body)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the session's conversions: %w", err)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, s.sql(writeConversions), ids, bodies); err != nil {
			return nil, fmt.Errorf("scrubbing conversions: %w", err)
		}
	}
	return ids, nil
}

// scrubOrders scrubs the credits of the order entries tied to a session
// (they copy the credited touchpoints too) and ties them to record.Erased.
func (s *Store) scrubOrders(ctx context.Context, tx pgx.Tx, sessionID string) error {
	var ids, bodies []string
	rows, err := tx.Query(ctx, s.sql(lockOrders), sessionID)
	if err != nil {
		return fmt.Errorf("reading the session's orders: %w", err)
	}
	for rows.Next() {
		var id string
		var raw []byte
		var e store.OrderEntry
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("reading the session's orders: %w", err)
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			rows.Close()
			return fmt.Errorf("decoding an order entry: %w", err)
		}
		e.SessionID = record.Erased
		for i := range e.Credits {
			e.Credits[i].Touchpoint.Scrub()
		}
		body, err := encodeJSON(e)
		if err != nil {
			rows.Close()
			return err
		}
		ids, bodies = append(ids, id), append(bodies, body)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the session's orders: %w", err)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, s.sql(writeOrders), ids, bodies, record.Erased); err != nil {
			return fmt.Errorf("scrubbing order entries: %w", err)
		}
	}
	return nil
}

// scrubDeliveries scrubs the deliveries of the conversions given and buries
// those that wait or run.
func (s *Store) scrubDeliveries(ctx context.Context, tx pgx.Tx, conversions []string, keepDeadUntil time.Time) error {
	if len(conversions) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, s.sql(lockDeliveries), conversions)
	if err != nil {
		return fmt.Errorf("reading the conversions' deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record.Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return fmt.Errorf("reading the conversions' deliveries: %w", err)
	}
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	ids, bodies, requests, attempts := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	cancel := make([]bool, n)
	for i, d := range ds {
		d.Scrub()
		ids[i], cancel[i] = d.ID, d.State.Waiting() || d.State == record.StateRunning
		if bodies[i], err = encodeJSON(immutablePart(d)); err != nil {
			return err
		}
		if requests[i], err = encodeJSON(d.Request); err != nil {
			return err
		}
		if attempts[i], err = encodeAttempts(d.Attempts); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, s.sql(writeDeliveries), ids, bodies, requests, attempts, cancel, store.ReasonErased, keepDeadUntil); err != nil {
		return fmt.Errorf("scrubbing deliveries: %w", err)
	}
	return nil
}
