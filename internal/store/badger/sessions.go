package badger

import (
	"bytes"
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

// head is what a session keeps besides its touchpoints. Its expiry is the
// latest of its touchpoints'.
type head struct {
	CreatedAt  time.Time `json:"created_at"`
	GAClientID string    `json:"ga_client_id,omitempty"`
}

func touchKey(session string, tp *record.Touchpoint) []byte {
	return key(pTouch, session, tp.Network, tp.ClickID)
}

func clickKey(session string, tp *record.Touchpoint) []byte {
	return key(pClick, tp.ClickID, session, tp.Network)
}

// putTouch writes a touchpoint and its click lookup, both expiring with
// the touchpoint's window.
func putTouch(txn *badger.Txn, session string, tp *record.Touchpoint) error {
	if err := setJSON(txn, touchKey(session, tp), tp.ExpiresAt, tp); err != nil {
		return err
	}
	return set(txn, clickKey(session, tp), tp.ExpiresAt, nil)
}

func delTouch(txn *badger.Txn, session string, tp *record.Touchpoint) error {
	if err := del(txn, touchKey(session, tp)); err != nil {
		return err
	}
	return del(txn, clickKey(session, tp))
}

// touches reads a session's stored touchpoints, live or not, oldest first.
func touches(txn *badger.Txn, session string) ([]record.Touchpoint, error) {
	var out []record.Touchpoint
	err := scan(txn, prefixOf(pTouch, session), nil, false, false, func(k, v []byte) error {
		p, _ := decode(v, time.Time{})
		var tp record.Touchpoint
		if err := json.Unmarshal(p, &tp); err != nil {
			return fmt.Errorf("decoding touchpoint %q: %w", k, err)
		}
		out = append(out, tp)
		return nil
	})
	slices.SortStableFunc(out, func(a, b record.Touchpoint) int { return a.CapturedAt.Compare(b.CapturedAt) })
	return out, err
}

func live(tps []record.Touchpoint, now time.Time) []record.Touchpoint {
	var out []record.Touchpoint
	for _, tp := range tps {
		if now.Before(tp.ExpiresAt) {
			out = append(out, tp)
		}
	}
	return out
}

func latestExpiry(tps []record.Touchpoint) time.Time {
	var t time.Time
	for _, tp := range tps {
		if tp.ExpiresAt.After(t) {
			t = tp.ExpiresAt
		}
	}
	return t
}

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(_ context.Context, sess *record.Session) error {
	return s.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key(pHead, sess.ID)); err == nil {
			return fmt.Errorf("session %s: %w", sess.ID, store.ErrExists)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		for i := range sess.Touchpoints {
			if err := putTouch(txn, sess.ID, &sess.Touchpoints[i]); err != nil {
				return err
			}
		}
		return setJSON(txn, key(pHead, sess.ID), latestExpiry(sess.Touchpoints), head{CreatedAt: sess.CreatedAt, GAClientID: sess.GAClientID})
	})
}

// AddTouchpoints implements store.Sessions. A click rewrites only its own
// touchpoints and the session head, however many the session holds.
func (s *Store) AddTouchpoints(_ context.Context, id string, tps []record.Touchpoint, gaClientID string, limit int, now time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		var h head
		if err := getJSON(txn, key(pHead, id), now, &h); err != nil {
			return err
		}
		stored, err := touches(txn, id)
		if err != nil {
			return err
		}
		if len(live(stored, now)) == 0 {
			return store.ErrNotFound
		}
		for i := range tps {
			tp := &tps[i]
			stored = slices.DeleteFunc(stored, func(o record.Touchpoint) bool { return o.Network == tp.Network && o.ClickID == tp.ClickID })
			stored = append(stored, *tp)
			if err := putTouch(txn, id, tp); err != nil {
				return err
			}
		}
		slices.SortStableFunc(stored, func(a, b record.Touchpoint) int { return a.CapturedAt.Compare(b.CapturedAt) })
		for len(stored) > max(limit, 1) {
			if err := delTouch(txn, id, &stored[0]); err != nil {
				return err
			}
			stored = stored[1:]
		}
		if gaClientID != "" {
			h.GAClientID = gaClientID
		}
		return setJSON(txn, key(pHead, id), latestExpiry(stored), h)
	})
}

// Session implements store.Sessions.
func (s *Store) Session(_ context.Context, id string, now time.Time) (*record.Session, error) {
	var sess *record.Session
	err := s.view(func(txn *badger.Txn) error {
		var h head
		if err := getJSON(txn, key(pHead, id), now, &h); err != nil {
			return err
		}
		stored, err := touches(txn, id)
		if err != nil {
			return err
		}
		tps := live(stored, now)
		if len(tps) == 0 {
			return store.ErrNotFound
		}
		sess = &record.Session{ID: id, CreatedAt: h.CreatedAt, GAClientID: h.GAClientID, Touchpoints: tps}
		return nil
	})
	return sess, err
}

// FindClicks implements store.Sessions.
func (s *Store) FindClicks(_ context.Context, clickID string, now time.Time, limit int) ([]store.ClickMatch, error) {
	var out []store.ClickMatch
	prefix := prefixOf(pClick, clickID)
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, prefix, nil, false, true, func(k, _ []byte) error {
			parts := bytes.Split(k[len(prefix):], []byte{0})
			if len(parts) != 2 {
				return nil
			}
			var tp record.Touchpoint
			session, network := string(parts[0]), string(parts[1])
			err := getJSON(txn, key(pTouch, session, network, clickID), now, &tp)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if now.Before(tp.ExpiresAt) {
				out = append(out, store.ClickMatch{SessionID: session, Touchpoint: tp})
			}
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b store.ClickMatch) int { return b.Touchpoint.CapturedAt.Compare(a.Touchpoint.CapturedAt) })
	if len(out) > store.Limit(limit) {
		out = out[:store.Limit(limit)]
	}
	return out, err
}

// EraseSession implements store.Sessions, in one transaction. The erased
// bytes leave the store's files at the next Purge, within PurgeEvery.
func (s *Store) EraseSession(_ context.Context, id string, now, keepDeadUntil time.Time) (bool, error) {
	defer s.erased.Store(true)
	found := false
	err := s.update(func(txn *badger.Txn) error {
		found = false
		if _, err := txn.Get(key(pHead, id)); err == nil {
			found = true
			if err := del(txn, key(pHead, id)); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		stored, err := touches(txn, id)
		if err != nil {
			return err
		}
		for i := range stored {
			found = true
			if err := delTouch(txn, id, &stored[i]); err != nil {
				return err
			}
		}
		var convs []string
		err = scan(txn, prefixOf(pSessConv, id), nil, false, true, func(k, _ []byte) error {
			convs = append(convs, string(k[len(pSessConv)+len(id)+1:]))
			return nil
		})
		if err != nil {
			return err
		}
		for _, cid := range convs {
			found = true
			if err := del(txn, key(pSessConv, id, cid)); err != nil {
				return err
			}
			if err := s.scrubConversion(txn, cid, now, keepDeadUntil); err != nil {
				return err
			}
		}
		return nil
	})
	return found, err
}

// scrubConversion removes the personal data of a conversion, of the order
// entry it wrote and of its deliveries, and buries those that still wait.
func (s *Store) scrubConversion(txn *badger.Txn, id string, now, keepDeadUntil time.Time) error {
	var c record.Conversion
	err := getJSON(txn, key(pConversion, id), time.Time{}, &c)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := range c.Credits {
		c.Credits[i].Touchpoint.Scrub()
	}
	c.SessionID = ""
	if err := setJSON(txn, key(pConversion, id), c.ExpiresAt, &c); err != nil {
		return err
	}
	var e store.OrderEntry
	if err := getJSON(txn, key(pOrder, c.Order.ID), time.Time{}, &e); err == nil {
		for i := range e.Credits {
			e.Credits[i].Touchpoint.Scrub()
		}
		e.SessionID = record.Erased
		if err := setJSON(txn, key(pOrder, c.Order.ID), e.ExpiresAt, &e); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, did := range c.Deliveries {
		var d record.Delivery
		err := getJSON(txn, key(pDelivery, did), time.Time{}, &d)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		d.Scrub()
		switch {
		case d.State.Waiting():
			if err := del(txn, waitingKey(d.Network, d.NextAttempt, d.ID)); err != nil {
				return err
			}
		case d.State == record.StateRunning:
			if err := del(txn, runningKey(d.LeaseUntil, d.ID)); err != nil {
				return err
			}
		}
		if d.State.Waiting() || d.State == record.StateRunning {
			if err := bury(txn, &d, store.ReasonErased, keepDeadUntil); err != nil {
				return err
			}
			continue
		}
		if err := setJSON(txn, key(pDelivery, d.ID), d.ExpiresAt, &d); err != nil {
			return err
		}
	}
	return nil
}
