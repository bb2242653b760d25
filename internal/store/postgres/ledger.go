package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Marker kinds.
const (
	markEvent      = "event"
	markDelivery   = "delivery"
	markConversion = "conversion"
)

// setMarkers sets markers that are absent or expired, and returns the ones
// it set; the others are live. A marker being set by a transaction that has
// not committed yet makes this statement wait for it, so that concurrent
// recordings of one key, on any node, set it once. Rows are written in key
// order, so that two recordings wait for each other without deadlocking.
const setMarkers = `
INSERT INTO {s}.markers AS m (kind, key, expires_at)
SELECT u.kind, u.key, u.expires_at FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(kind, key, expires_at)
ORDER BY u.kind, u.key
ON CONFLICT (kind, key) DO UPDATE SET expires_at = excluded.expires_at
WHERE m.expires_at <= $4
RETURNING kind, key`

// marker is one marker to set.
type marker struct {
	kind, key string
	until     time.Time
}

// setMarkers sets the markers given (each kind and key once) and returns
// those it set.
func (s *Store) setMarkers(ctx context.Context, tx pgx.Tx, ms []marker, now time.Time) (map[marker]bool, error) {
	kinds, keys, untils := make([]string, len(ms)), make([]string, len(ms)), make([]time.Time, len(ms))
	for i, m := range ms {
		kinds[i], keys[i], untils[i] = m.kind, m.key, m.until
	}
	rows, err := tx.Query(ctx, s.sql(setMarkers), kinds, keys, untils, now)
	if err != nil {
		return nil, fmt.Errorf("setting markers: %w", err)
	}
	set := map[marker]bool{}
	var m marker
	_, err = pgx.ForEachRow(rows, []any{&m.kind, &m.key}, func() error {
		set[marker{kind: m.kind, key: m.key}] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("setting markers: %w", err)
	}
	return set, nil
}

const insertConversion = `
INSERT INTO {s}.conversions (id, session_id, event, status, source, networks, created_at, expires_at, conversion)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// insertDeliveries queues new deliveries; the columns that change later
// start from what the caller set.
const insertDeliveries = `
INSERT INTO {s}.deliveries (id, conversion_id, network, state, queued_at, next_attempt, tries, attempts, request, reason, delivery)
SELECT d.id, $1, d.network, 'queued', $2, $2, d.tries, d.attempts::jsonb, d.request::jsonb, d.reason, d.delivery::jsonb
FROM unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])
	AS d(id, network, tries, attempts, request, reason, delivery)`

// Record writes a recording in one transaction: the event marker, the
// order entry, the idempotency markers, the conversion and the deliveries.
func (s *Store) Record(ctx context.Context, r store.Recording) (store.Recorded, error) {
	var out store.Recorded
	err := s.inTx(ctx, "recording", func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = s.record(ctx, tx, r)
		return err
	})
	if err != nil {
		return store.Recorded{}, err
	}
	return out, nil
}

func (s *Store) record(ctx context.Context, tx pgx.Tx, r store.Recording) (store.Recorded, error) {
	var out store.Recorded
	if r.EventKey != "" {
		event := marker{kind: markEvent, key: r.EventKey}
		set, err := s.setMarkers(ctx, tx, []marker{{markEvent, r.EventKey, r.EventUntil}}, r.Now)
		if err != nil {
			return out, err
		}
		if !set[event] {
			// Nothing was written: committing the empty transaction is
			// the same as rolling it back.
			return store.Recorded{SeenEvent: true}, nil
		}
	}
	if r.Entry != nil {
		e, err := s.writeEntry(ctx, tx, r)
		if err != nil {
			return out, err
		}
		out.Entry = e
	}

	// The deliveries' idempotency markers and the conversion's, in one
	// statement.
	var marks []marker
	seen := map[string]bool{}
	for _, d := range r.Deliveries {
		if d.Key != "" && !seen[d.Key] {
			seen[d.Key] = true
			marks = append(marks, marker{markDelivery, d.Key, r.DedupUntil})
		}
	}
	conversionMark := marker{kind: markConversion, key: r.ConversionKey}
	if r.Conversion != nil && r.ConversionKey != "" {
		// Kept as long as the conversion or the deliveries' markers.
		until := r.DedupUntil
		if r.Conversion.ExpiresAt.After(until) {
			until = r.Conversion.ExpiresAt
		}
		marks = append(marks, marker{markConversion, r.ConversionKey, until})
	}
	set := map[marker]bool{}
	if len(marks) > 0 {
		var err error
		if set, err = s.setMarkers(ctx, tx, marks, r.Now); err != nil {
			return out, err
		}
	}

	// A delivery whose key was marked before is a duplicate; so is a
	// second delivery with one key in this recording.
	var queued []record.Delivery
	var skipped []string
	for _, d := range r.Deliveries {
		if d.Key != "" {
			m := marker{kind: markDelivery, key: d.Key}
			if !set[m] {
				out.Duplicates = append(out.Duplicates, d.Key)
				skipped = append(skipped, d.Network)
				continue
			}
			set[m] = false
		}
		if d.ID == "" {
			d.ID = record.NewID(r.Now)
		}
		queued = append(queued, d)
	}

	// The conversion and the deliveries go in one batch.
	b := &pgx.Batch{}
	if c := r.Conversion; c != nil && (len(queued) > 0 || r.ConversionKey == "" || set[conversionMark]) {
		conv := *c
		if conv.ID == "" {
			conv.ID = record.NewID(r.Now)
		}
		conv.Deliveries = []string{}
		for _, d := range queued {
			conv.Deliveries = append(conv.Deliveries, d.ID)
		}
		conv.Skipped = append(append([]string{}, c.Skipped...), skipped...)
		if err := s.queueConversion(b, &conv); err != nil {
			return out, err
		}
		out.Conversion = &conv
	}
	if len(queued) > 0 {
		conversionID := ""
		if out.Conversion != nil {
			conversionID = out.Conversion.ID
		}
		if err := s.queueDeliveries(b, conversionID, queued, r.Now); err != nil {
			return out, err
		}
		for _, d := range queued {
			out.Queued = append(out.Queued, d.ID)
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return out, fmt.Errorf("storing the conversion and its deliveries: %w", err)
		}
	}
	return out, nil
}

// creditedNetworks lists the networks credited with a conversion, once each.
func creditedNetworks(c *record.Conversion) []string {
	out := []string{}
	for _, cr := range c.Credits {
		if !slices.Contains(out, cr.Network) {
			out = append(out, cr.Network)
		}
	}
	return out
}

// queueConversion adds the insert of a conversion to b.
func (s *Store) queueConversion(b *pgx.Batch, c *record.Conversion) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding the conversion: %w", err)
	}
	b.Queue(s.sql(insertConversion), c.ID, c.SessionID, c.Order.Event, string(c.Order.Status),
		c.Order.Source, creditedNetworks(c), c.CreatedAt, c.ExpiresAt, body)
	return nil
}

// queueDeliveries adds the insert of deliveries to b.
func (s *Store) queueDeliveries(b *pgx.Batch, conversionID string, ds []record.Delivery, now time.Time) error {
	n := len(ds)
	ids, networks, attempts, requests, reasons, bodies := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	tries := make([]int32, n)
	for i, d := range ds {
		ids[i], networks[i], tries[i], reasons[i] = d.ID, d.Network, int32(d.Tries), d.Reason
		var err error
		if attempts[i], err = encodeAttempts(d.Attempts); err != nil {
			return err
		}
		if requests[i], err = encodeJSON(d.Request); err != nil {
			return err
		}
		d.ConversionID = conversionID
		if bodies[i], err = encodeJSON(immutablePart(d)); err != nil {
			return err
		}
	}
	b.Queue(s.sql(insertDeliveries), conversionID, now, ids, networks, tries, attempts, requests, reasons, bodies)
	return nil
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding %T: %w", v, err)
	}
	return string(b), nil
}

func encodeAttempts(as []record.Attempt) (string, error) {
	if as == nil {
		as = []record.Attempt{}
	}
	return encodeJSON(as)
}

const readConversion = `
SELECT conversion FROM {s}.conversions WHERE id = $1 AND expires_at > $2`

// Conversion returns one conversion.
func (s *Store) Conversion(ctx context.Context, id string, now time.Time) (*record.Conversion, error) {
	var c *record.Conversion
	err := s.run(ctx, "reading a conversion", func(ctx context.Context) error {
		var raw []byte
		err := s.pool.QueryRow(ctx, s.sql(readConversion), id, now).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c = new(record.Conversion)
		if err := json.Unmarshal(raw, c); err != nil {
			return fmt.Errorf("decoding a conversion: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Conversions lists conversions, newest first.
func (s *Store) Conversions(ctx context.Context, q store.ConversionQuery, now time.Time) ([]record.Conversion, string, error) {
	w := where{}
	w.add("expires_at > ?", now)
	if q.Network != "" {
		w.add("? = ANY(networks)", q.Network)
	}
	if q.Event != "" {
		w.add("event = ?", q.Event)
	}
	if q.Status != "" {
		w.add("status = ?", string(q.Status))
	}
	if q.Source != "" {
		// store.SourceIs: the source itself, or its kind.
		w.add("? IN (source, split_part(source, ':', 1))", q.Source)
	}
	if q.SessionID != "" {
		w.add("session_id = ?", q.SessionID)
	}
	if !q.Since.IsZero() {
		w.add("created_at >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		w.add("created_at < ?", q.Until)
	}
	var out []record.Conversion
	var next string
	err := s.run(ctx, "listing conversions", func(ctx context.Context) error {
		var err error
		out, next, err = listPage(ctx, s, "SELECT conversion FROM {s}.conversions", w, q.Cursor, q.Limit,
			func(rows pgx.Rows) (record.Conversion, string, error) {
				var c record.Conversion
				var raw []byte
				if err := rows.Scan(&raw); err != nil {
					return c, "", err
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					return c, "", fmt.Errorf("decoding a conversion: %w", err)
				}
				return c, c.ID, nil
			})
		return err
	})
	return out, next, err
}

const countSessionConversions = `
SELECT count(*) FROM {s}.conversions WHERE session_id = $1 AND created_at >= $2 AND expires_at > $3`

// SessionConversions counts a session's conversions created at or after
// since.
func (s *Store) SessionConversions(ctx context.Context, sessionID string, since, now time.Time) (int, error) {
	var n int
	err := s.run(ctx, "counting a session's conversions", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.sql(countSessionConversions), sessionID, since, now).Scan(&n)
	})
	return n, err
}
