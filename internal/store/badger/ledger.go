package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// findEntry returns the entry the first of keys finds, or a zero entry.
func findEntry(txn *badger.Txn, keys []string, now time.Time) (store.OrderEntry, error) {
	for _, k := range keys {
		id, err := get(txn, key(pOrderKey, k), now)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return store.OrderEntry{}, err
		}
		var e store.OrderEntry
		err = getJSON(txn, key(pOrder, string(id)), now, &e)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return e, err
	}
	return store.OrderEntry{}, nil
}

// FindOrder implements store.Ledger.
func (s *Store) FindOrder(_ context.Context, ids []string, now time.Time) (store.OrderEntry, error) {
	var e store.OrderEntry
	err := s.view(func(txn *badger.Txn) error {
		var err error
		e, err = findEntry(txn, ids, now)
		return err
	})
	return e, err
}

// Record implements store.Ledger, in one transaction.
func (s *Store) Record(_ context.Context, r store.Recording) (store.Recorded, error) {
	var res store.Recorded
	var nets []string
	for _, d := range r.Deliveries {
		if !slices.Contains(nets, d.Network) {
			nets = append(nets, d.Network)
			s.floors.lower(d.Network, r.Now)
		}
	}
	defer func() {
		for _, n := range nets {
			s.floors.done(n)
		}
	}()
	err := s.update(func(txn *badger.Txn) error {
		res = store.Recorded{}
		now := r.Now
		if r.EventKey != "" {
			seen, err := exists(txn, key(pEvent, r.EventKey), now)
			if err != nil {
				return err
			}
			if seen {
				res.SeenEvent = true
				return nil
			}
		}
		if r.Entry != nil {
			e, err := writeEntry(txn, r, now)
			if err != nil {
				return err
			}
			res.Entry = e
		}
		var conv *record.Conversion
		if r.Conversion != nil {
			c := *r.Conversion
			c.Deliveries = nil
			c.Skipped = slices.Clone(c.Skipped)
			conv = &c
		}
		for _, d := range r.Deliveries {
			dk := key(pDedup, d.Key)
			dup, err := exists(txn, dk, now)
			if err != nil {
				return err
			}
			if dup {
				res.Duplicates = append(res.Duplicates, d.Key)
				if conv != nil {
					conv.Skipped = append(conv.Skipped, d.Network)
				}
				continue
			}
			if conv != nil {
				d.ConversionID = conv.ID
			}
			d.State, d.QueuedAt, d.NextAttempt = record.StateQueued, now, now
			d.Owner, d.LeaseUntil, d.ExpiresAt = "", time.Time{}, time.Time{}
			if err := set(txn, dk, r.DedupUntil, []byte(d.ID)); err != nil {
				return err
			}
			if err := putWaiting(txn, &d); err != nil {
				return err
			}
			res.Queued = append(res.Queued, d.ID)
			if conv != nil {
				conv.Deliveries = append(conv.Deliveries, d.ID)
			}
		}
		if conv != nil {
			stored, err := s.storeConversion(txn, conv, r.ConversionKey, len(res.Queued) > 0, now)
			if err != nil {
				return err
			}
			if stored {
				res.Conversion = conv
			}
		}
		if r.EventKey != "" {
			id := ""
			if res.Conversion != nil {
				id = res.Conversion.ID
			}
			if err := set(txn, key(pEvent, r.EventKey), r.EventUntil, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Recorded{}, fmt.Errorf("recording: %w", err)
	}
	return res, nil
}

// writeEntry stores a recording's order entry, checking the version the
// caller read and keeping the session the order was first tied to.
func writeEntry(txn *badger.Txn, r store.Recording, now time.Time) (*store.OrderEntry, error) {
	cur, err := findEntry(txn, r.OrderKeys, now)
	if err != nil {
		return nil, err
	}
	if cur.Version != r.Prior {
		return nil, fmt.Errorf("order %s: %w (read version %d, stored %d)", r.Entry.OrderID, store.ErrConflict, r.Prior, cur.Version)
	}
	e := *r.Entry
	if cur.SessionID != "" {
		e.SessionID = cur.SessionID
	}
	e.Version = cur.Version + 1
	if err := setJSON(txn, key(pOrder, e.OrderID), e.ExpiresAt, &e); err != nil {
		return nil, err
	}
	for _, k := range append([]string{e.OrderID}, r.OrderKeys...) {
		if err := set(txn, key(pOrderKey, k), e.ExpiresAt, []byte(e.OrderID)); err != nil {
			return nil, err
		}
	}
	return &e, nil
}

// storeConversion writes a conversion when something was queued for it, or
// when no conversion was stored under its key before; it reports whether
// it wrote it.
func (s *Store) storeConversion(txn *badger.Txn, c *record.Conversion, convKey string, queued bool, now time.Time) (bool, error) {
	if !queued {
		if convKey == "" {
			return false, nil
		}
		seen, err := exists(txn, key(pConvKey, convKey), now)
		if err != nil || seen {
			return false, err
		}
	}
	if convKey != "" {
		if err := set(txn, key(pConvKey, convKey), c.ExpiresAt, []byte(c.ID)); err != nil {
			return false, err
		}
	}
	if c.SessionID != "" {
		if err := set(txn, key(pSessConv, c.SessionID, c.ID), c.ExpiresAt, nil); err != nil {
			return false, err
		}
	}
	return true, setJSON(txn, key(pConversion, c.ID), c.ExpiresAt, c)
}

// Conversion implements store.Ledger.
func (s *Store) Conversion(_ context.Context, id string, now time.Time) (*record.Conversion, error) {
	var c record.Conversion
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, key(pConversion, id), now, &c) })
	if err != nil {
		return nil, fmt.Errorf("conversion %s: %w", id, err)
	}
	return &c, nil
}

// Conversions implements store.Ledger: a reverse scan of the conversions
// from the cursor (or the upper time bound), stopping at the lower bound.
func (s *Store) Conversions(_ context.Context, q store.ConversionQuery, now time.Time) ([]record.Conversion, string, error) {
	match := func(c *record.Conversion) bool {
		if q.Event != "" && c.Order.Event != q.Event || q.Status != "" && c.Order.Status != q.Status ||
			q.Source != "" && !store.SourceIs(c.Order.Source, q.Source) || q.SessionID != "" && c.SessionID != q.SessionID {
			return false
		}
		if q.Network != "" && !slices.ContainsFunc(c.Credits, func(cr record.Credit) bool { return cr.Network == q.Network }) {
			return false
		}
		return (q.Since.IsZero() || !c.CreatedAt.Before(q.Since)) && (q.Until.IsZero() || c.CreatedAt.Before(q.Until))
	}
	var start []byte
	if q.Cursor != "" {
		start = exclusiveBefore(key(pConversion, q.Cursor))
	} else if !q.Until.IsZero() {
		start = exclusiveBefore(key(pConversion, record.IDFloor(q.Until)))
	}
	var floor []byte
	if !q.Since.IsZero() {
		floor = key(pConversion, record.IDFloor(q.Since.Add(-time.Millisecond)))
	}
	return page(s, []byte(pConversion), start, floor, q.Limit, now, match, func(c *record.Conversion) string { return c.ID })
}

// exclusiveBefore returns the greatest key sorting before k that a reverse
// scan can start at: k itself, one byte shorter in its last position.
func exclusiveBefore(k []byte) []byte {
	b := append([]byte(nil), k...)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] > 0 {
			b[i]--
			return append(b[:i+1], 0xff, 0xff, 0xff, 0xff)
		}
		b = b[:i]
	}
	return b
}

// page lists live records of type T under prefix in reverse key order from
// start, down to floor (exclusive; nil: the prefix's start), that match,
// at most limit, and returns the cursor of the next page.
func page[T any](s *Store, prefix, start, floor []byte, limit int, now time.Time, match func(*T) bool, id func(*T) string) ([]T, string, error) {
	limit = store.Limit(limit)
	var out []T
	more := false
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, prefix, start, true, false, func(k, v []byte) error {
			if floor != nil && string(k) <= string(floor) {
				return errStop
			}
			p, isLive := decode(v, now)
			if !isLive {
				return nil
			}
			var rec T
			if err := json.Unmarshal(p, &rec); err != nil {
				return fmt.Errorf("decoding %q: %w", k, err)
			}
			if !match(&rec) {
				return nil
			}
			if len(out) == limit {
				more = true
				return errStop
			}
			out = append(out, rec)
			return nil
		})
	})
	next := ""
	if more {
		next = id(&out[len(out)-1])
	}
	return out, next, err
}

// SessionConversions implements store.Ledger.
func (s *Store) SessionConversions(_ context.Context, sessionID string, since, now time.Time) (int, error) {
	n := 0
	prefix := prefixOf(pSessConv, sessionID)
	err := s.view(func(txn *badger.Txn) error {
		start := append(append([]byte(nil), prefix...), record.IDFloor(since)...)
		return scan(txn, prefix, start, false, false, func(_, v []byte) error {
			if _, isLive := decode(v, now); isLive {
				n++
			}
			return nil
		})
	})
	return n, err
}
