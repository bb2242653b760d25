package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// findOrder reads the entry that the first of the keys given finds.
const findOrder = `
SELECT o.order_id, o.session_id, o.version, o.expires_at, o.entry
FROM unnest($1::text[]) WITH ORDINALITY AS q(key, n)
JOIN {s}.order_keys k ON k.key = q.key AND k.expires_at > $2
JOIN {s}.orders o ON o.order_id = k.order_id AND o.expires_at > $2
ORDER BY q.n
LIMIT 1`

// FindOrder returns the entry stored under the first of ids that finds one,
// or a zero entry.
func (s *Store) FindOrder(ctx context.Context, ids []string, now time.Time) (store.OrderEntry, error) {
	var e store.OrderEntry
	err := s.run(ctx, "finding an order", func(ctx context.Context) error {
		var err error
		e, err = scanEntry(s.pool.QueryRow(ctx, s.sql(findOrder), ids, now))
		if errors.Is(err, pgx.ErrNoRows) {
			e = store.OrderEntry{}
			return nil
		}
		return err
	})
	return e, err
}

// scanEntry reads an order entry from the columns order_id, session_id,
// version, expires_at and entry.
func scanEntry(row pgx.Row) (store.OrderEntry, error) {
	var e store.OrderEntry
	var raw []byte
	var orderID, sessionID string
	var version int64
	var expires time.Time
	if err := row.Scan(&orderID, &sessionID, &version, &expires, &raw); err != nil {
		return e, err
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("decoding an order entry: %w", err)
	}
	e.OrderID, e.SessionID, e.Version, e.ExpiresAt = orderID, sessionID, version, expires.UTC()
	return e, nil
}

// The statements that write an order entry, in a Record transaction.
const (
	// placeOrderKeys gives every key a row, so that the next statement can
	// lock it: writers of overlapping keys then run one after the other,
	// including writers of an order nobody recorded yet. The placeholders
	// are expired; a key that is kept gets the entry's values.
	placeOrderKeys = `
INSERT INTO {s}.order_keys (key, order_id, expires_at)
SELECT k, '', $2 FROM unnest($1::text[]) AS k ORDER BY k
ON CONFLICT (key) DO NOTHING`
	lockOrderKeys = `
SELECT key FROM {s}.order_keys WHERE key = ANY($1) ORDER BY key FOR UPDATE`
	// lockOrder reads the latest version of the entry the keys found and
	// locks it, for the writers that reach it by other keys.
	lockOrder = `
SELECT order_id, session_id, version, expires_at, entry FROM {s}.orders
WHERE order_id = $1 AND expires_at > $2
FOR UPDATE`
	// writeOrder stores the entry: an expired row counts as absent, and a
	// session once set is kept.
	writeOrder = `
INSERT INTO {s}.orders AS o (order_id, session_id, version, expires_at, entry)
VALUES ($1, $2, 1, $3, $4)
ON CONFLICT (order_id) DO UPDATE SET
	session_id = CASE WHEN o.expires_at > $5 AND o.session_id <> '' THEN o.session_id ELSE excluded.session_id END,
	version = CASE WHEN o.expires_at > $5 THEN o.version + 1 ELSE 1 END,
	expires_at = excluded.expires_at,
	entry = excluded.entry
RETURNING session_id, version`
	// pointOrderKeys points the keys at the entry (moving those that found
	// another) and gives the entry's other keys its expiry.
	pointOrderKeys = `
UPDATE {s}.order_keys SET order_id = $2, expires_at = $3
WHERE key = ANY($1) OR order_id = $2`
)

// writeEntry stores r.Entry under r.OrderKeys if the entry those keys find
// has version r.Prior, and returns it as stored; ErrConflict otherwise.
func (s *Store) writeEntry(ctx context.Context, tx pgx.Tx, r store.Recording) (*store.OrderEntry, error) {
	keys := slices.Clone(r.OrderKeys)
	if len(keys) == 0 {
		keys = []string{r.Entry.OrderID}
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if _, err := tx.Exec(ctx, s.sql(placeOrderKeys), sorted, r.Now); err != nil {
		return nil, fmt.Errorf("placing order keys: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql(lockOrderKeys), sorted); err != nil {
		return nil, fmt.Errorf("locking order keys: %w", err)
	}
	// Read committed: this statement sees what the writers that held the
	// keys before committed.
	var found int64
	e, err := scanEntry(tx.QueryRow(ctx, s.sql(findOrder), keys, r.Now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("reading the order entry: %w", err)
	default:
		e, err = scanEntry(tx.QueryRow(ctx, s.sql(lockOrder), e.OrderID, r.Now))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("locking the order entry: %w", err)
		}
		found = e.Version
	}
	if found != r.Prior {
		return nil, store.ErrConflict
	}
	stored := *r.Entry
	stored.Version = 0
	body, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("encoding the order entry: %w", err)
	}
	err = tx.QueryRow(ctx, s.sql(writeOrder), stored.OrderID, stored.SessionID, stored.ExpiresAt, body, r.Now).
		Scan(&stored.SessionID, &stored.Version)
	if err != nil {
		return nil, fmt.Errorf("writing the order entry: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql(pointOrderKeys), sorted, stored.OrderID, stored.ExpiresAt); err != nil {
		return nil, fmt.Errorf("writing order keys: %w", err)
	}
	return &stored, nil
}
