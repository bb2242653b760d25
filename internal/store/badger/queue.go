package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// putWaiting writes a waiting delivery and its waiting key. The caller
// lowered the network's floor.
func putWaiting(txn *badger.Txn, d *record.Delivery) error {
	if err := setJSON(txn, key(pDelivery, d.ID), time.Time{}, d); err != nil {
		return err
	}
	return set(txn, waitingKey(d.Network, d.NextAttempt, d.ID), time.Time{}, waitingValue(string(d.State), d.QueuedAt))
}

// bury makes a delivery dead, kept until keepUntil.
func bury(txn *badger.Txn, d *record.Delivery, reason string, keepUntil time.Time) error {
	d.State, d.Reason, d.ExpiresAt = record.StateDead, reason, keepUntil
	d.Owner, d.LeaseUntil, d.NextAttempt = "", time.Time{}, time.Time{}
	if err := setJSON(txn, key(pDelivery, d.ID), keepUntil, d); err != nil {
		return err
	}
	return set(txn, key(pDead, d.Network, d.ID), keepUntil, nil)
}

func getDelivery(txn *badger.Txn, id string, now time.Time) (*record.Delivery, error) {
	var d record.Delivery
	if err := getJSON(txn, key(pDelivery, id), now, &d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
		}
		return nil, err
	}
	if !d.ExpiresAt.IsZero() && !now.Before(d.ExpiresAt) {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	return &d, nil
}

// Claim implements store.Queue.
func (s *Store) Claim(_ context.Context, network, owner string, limit int, now, leaseUntil time.Time) ([]record.Delivery, time.Time, error) {
	var claimed []record.Delivery
	// next is the due time of the first waiting key left; the floor, where
	// the next claim may start: that key, or the last one taken when none
	// is left.
	var next, floorAt time.Time
	var floorID string
	prefix := prefixOf(pWaiting, network)
	fromAt, fromID, gen := s.floors.get(network)
	err := s.update(func(txn *badger.Txn) error {
		claimed, next, floorAt, floorID = claimed[:0], time.Time{}, time.Time{}, ""
		var start []byte
		if !fromAt.IsZero() {
			start = waitingKey(network, fromAt, fromID)
		}
		var keys [][]byte
		err := scan(txn, prefix, start, false, true, func(k, _ []byte) error {
			due, id := parseWaiting(network, k)
			if len(keys) == limit || due.After(now) {
				next, floorAt, floorID = due, due, id
				return errStop
			}
			keys = append(keys, bytes.Clone(k))
			floorAt, floorID = due, id
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			_, id := parseWaiting(network, k)
			if err := del(txn, k); err != nil {
				return err
			}
			d, err := getDelivery(txn, id, now)
			if errors.Is(err, store.ErrNotFound) {
				continue // a stale index entry
			}
			if err != nil {
				return err
			}
			if !d.State.Waiting() {
				continue
			}
			d.State, d.Owner, d.LeaseUntil = record.StateRunning, owner, leaseUntil
			if err := setJSON(txn, key(pDelivery, id), time.Time{}, d); err != nil {
				return err
			}
			if err := set(txn, runningKey(leaseUntil, id), time.Time{}, runningValue(network, d.QueuedAt)); err != nil {
				return err
			}
			claimed = append(claimed, *d)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claiming deliveries of %s: %w", network, err)
	}
	if !floorAt.IsZero() {
		s.floors.raise(network, floorAt, floorID, gen)
	}
	return claimed, next, nil
}

// runningValue is a running key's value: the network and the queued-at
// time, for queue statistics.
func runningValue(network string, queuedAt time.Time) []byte {
	return append(appendTime(nil, queuedAt), network...)
}

// settle runs change on a running delivery leased to owner, after
// removing its lease, and writes it back; ErrLeaseLost for any other.
func (s *Store) settle(id, owner string, change func(txn *badger.Txn, d *record.Delivery) error) error {
	return s.update(func(txn *badger.Txn) error {
		d, err := getDelivery(txn, id, time.Time{})
		if err != nil {
			return err
		}
		if d.State != record.StateRunning || d.Owner != owner {
			return fmt.Errorf("delivery %s is %s: %w", id, d.State, store.ErrLeaseLost)
		}
		if err := del(txn, runningKey(d.LeaseUntil, id)); err != nil {
			return err
		}
		d.Owner, d.LeaseUntil = "", time.Time{}
		return change(txn, d)
	})
}

// networkOf reads a delivery's network, to lower its floor before a write
// that queues it again.
func (s *Store) networkOf(id string) (string, error) {
	var network string
	err := s.view(func(txn *badger.Txn) error {
		d, err := getDelivery(txn, id, time.Time{})
		if err == nil {
			network = d.Network
		}
		return err
	})
	return network, err
}

// Complete implements store.Queue.
func (s *Store) Complete(_ context.Context, id, owner string, at record.Attempt, request record.Request, keepUntil time.Time) error {
	return s.settle(id, owner, func(txn *badger.Txn, d *record.Delivery) error {
		d.AddAttempt(at)
		d.Request, d.State, d.NextAttempt, d.Reason, d.ExpiresAt = request, record.StateDelivered, time.Time{}, "", keepUntil
		return setJSON(txn, key(pDelivery, id), keepUntil, d)
	})
}

// Retry implements store.Queue.
func (s *Store) Retry(_ context.Context, id, owner string, at record.Attempt, request record.Request, next time.Time) error {
	return s.requeue(id, owner, next, func(d *record.Delivery) {
		d.AddAttempt(at)
		d.Request, d.State = request, record.StateRetrying
	})
}

// Release implements store.Queue.
func (s *Store) Release(_ context.Context, id, owner string, due time.Time) error {
	return s.requeue(id, owner, due, func(d *record.Delivery) {
		if d.Tries == 0 {
			d.State = record.StateQueued
		} else {
			d.State = record.StateRetrying
		}
	})
}

// requeue settles a running delivery back into the waiting index, due at due.
func (s *Store) requeue(id, owner string, due time.Time, change func(d *record.Delivery)) error {
	network, err := s.networkOf(id)
	if err != nil {
		return err
	}
	s.floors.lower(network, due)
	defer s.floors.done(network)
	return s.settle(id, owner, func(txn *badger.Txn, d *record.Delivery) error {
		change(d)
		d.NextAttempt = due
		return putWaiting(txn, d)
	})
}

// Bury implements store.Queue.
func (s *Store) Bury(_ context.Context, id, owner string, at *record.Attempt, request record.Request, reason string, keepUntil time.Time) error {
	return s.settle(id, owner, func(txn *badger.Txn, d *record.Delivery) error {
		if at != nil {
			d.AddAttempt(*at)
		}
		d.Request = request
		return bury(txn, d, reason, keepUntil)
	})
}

// Rescue implements store.Queue, a batch at a time.
func (s *Store) Rescue(_ context.Context, now time.Time) (int, error) {
	total := 0
	for {
		type lease struct {
			key     []byte
			id      string
			network string
		}
		var leases []lease
		err := s.view(func(txn *badger.Txn) error {
			end := appendTime([]byte(pRunning), now)
			return scan(txn, []byte(pRunning), nil, false, false, func(k, v []byte) error {
				if bytes.Compare(k, end) >= 0 || len(leases) == 500 {
					return errStop
				}
				p, _ := decode(v, time.Time{})
				leases = append(leases, lease{key: bytes.Clone(k), id: string(k[len(pRunning)+8:]), network: string(p[8:])})
				return nil
			})
		})
		if err != nil || len(leases) == 0 {
			return total, err
		}
		var nets []string
		for _, l := range leases {
			if !slices.Contains(nets, l.network) {
				nets = append(nets, l.network)
				s.floors.lower(l.network, now)
			}
		}
		n := 0
		err = s.update(func(txn *badger.Txn) error {
			n = 0
			for _, l := range leases {
				if err := del(txn, l.key); err != nil {
					return err
				}
				d, err := getDelivery(txn, l.id, time.Time{})
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if d.State != record.StateRunning || !bytes.Equal(runningKey(d.LeaseUntil, d.ID), l.key) {
					continue
				}
				d.Owner, d.LeaseUntil, d.NextAttempt = "", time.Time{}, now
				d.State = record.StateQueued
				if d.Tries > 0 {
					d.State = record.StateRetrying
				}
				if err := putWaiting(txn, d); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		for _, nw := range nets {
			s.floors.done(nw)
		}
		if err != nil {
			return total, fmt.Errorf("rescuing deliveries: %w", err)
		}
		total += n
		if len(leases) < 500 {
			return total, nil
		}
	}
}

// replay queues a dead or delivered delivery again in txn.
func replay(txn *badger.Txn, id string, now time.Time) (*record.Delivery, error) {
	d, err := getDelivery(txn, id, now)
	if err != nil {
		return nil, err
	}
	if d.State != record.StateDead && d.State != record.StateDelivered {
		return nil, fmt.Errorf("delivery %s is %s: only dead or delivered deliveries can be replayed: %w", id, d.State, store.ErrState)
	}
	if d.State == record.StateDead {
		if err := del(txn, key(pDead, d.Network, d.ID)); err != nil {
			return nil, err
		}
	}
	d.State, d.QueuedAt, d.NextAttempt, d.Reason, d.ExpiresAt = record.StateQueued, now, now, "replayed", time.Time{}
	return d, putWaiting(txn, d)
}

// Replay implements store.Queue.
func (s *Store) Replay(_ context.Context, id string, now time.Time) (*record.Delivery, error) {
	network, err := s.networkOf(id)
	if err != nil {
		return nil, err
	}
	s.floors.lower(network, now)
	defer s.floors.done(network)
	var d *record.Delivery
	err = s.update(func(txn *badger.Txn) error {
		var err error
		d, err = replay(txn, id, now)
		return err
	})
	return d, err
}

// ReplayDead implements store.Queue, a batch at a time.
func (s *Store) ReplayDead(_ context.Context, network string, now time.Time) (int, error) {
	s.floors.lower(network, now)
	defer s.floors.done(network)
	total := 0
	prefix := prefixOf(pDead, network)
	for {
		n := 0
		err := s.update(func(txn *badger.Txn) error {
			n = 0
			var ids []string
			err := scan(txn, prefix, nil, false, false, func(k, v []byte) error {
				if _, isLive := decode(v, now); isLive {
					ids = append(ids, string(k[len(prefix):]))
				}
				if len(ids) == 500 {
					return errStop
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := replay(txn, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < 500 {
			return total, nil
		}
	}
}

// Delivery implements store.Queue.
func (s *Store) Delivery(_ context.Context, id string, now time.Time) (*record.Delivery, error) {
	var d *record.Delivery
	err := s.view(func(txn *badger.Txn) error {
		var err error
		d, err = getDelivery(txn, id, now)
		return err
	})
	return d, err
}

// Deliveries implements store.Queue.
func (s *Store) Deliveries(_ context.Context, q store.DeliveryQuery, now time.Time) ([]record.Delivery, string, error) {
	var start []byte
	if q.Cursor != "" {
		start = exclusiveBefore(key(pDelivery, q.Cursor))
	}
	return page(s, []byte(pDelivery), start, nil, q.Limit, now, func(d *record.Delivery) bool {
		return (q.State == "" || d.State == q.State) && (q.Network == "" || d.Network == q.Network) &&
			(q.ConversionID == "" || d.ConversionID == q.ConversionID) && (d.ExpiresAt.IsZero() || now.Before(d.ExpiresAt))
	}, func(d *record.Delivery) string { return d.ID })
}

// QueueStats implements store.Queue from the waiting, running and dead
// indexes, without reading a delivery.
func (s *Store) QueueStats(_ context.Context, now time.Time) ([]store.NetworkQueue, error) {
	stats := map[string]*store.NetworkQueue{}
	of := func(n string) *store.NetworkQueue {
		st := stats[n]
		if st == nil {
			st = &store.NetworkQueue{Network: n}
			stats[n] = st
		}
		return st
	}
	oldest := func(st *store.NetworkQueue, t time.Time) {
		if st.OldestWaiting.IsZero() || t.Before(st.OldestWaiting) {
			st.OldestWaiting = t
		}
	}
	err := s.view(func(txn *badger.Txn) error {
		err := scan(txn, []byte(pWaiting), nil, false, false, func(k, v []byte) error {
			rest := k[len(pWaiting):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) < i+9 {
				return nil
			}
			st := of(string(rest[:i]))
			due := readTime(rest[i+1:])
			if st.NextDue.IsZero() || due.Before(st.NextDue) {
				st.NextDue = due
			}
			p, _ := decode(v, now)
			if len(p) == 9 {
				if p[0] == record.StateRetrying[0] {
					st.Retrying++
				} else {
					st.Queued++
				}
				oldest(st, readTime(p[1:]))
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = scan(txn, []byte(pRunning), nil, false, false, func(_, v []byte) error {
			p, _ := decode(v, now)
			if len(p) > 8 {
				st := of(string(p[8:]))
				st.Running++
				oldest(st, readTime(p))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return scan(txn, []byte(pDead), nil, false, false, func(k, v []byte) error {
			if _, isLive := decode(v, now); !isLive {
				return nil
			}
			rest := k[len(pDead):]
			if i := bytes.IndexByte(rest, 0); i > 0 {
				of(string(rest[:i])).Dead++
			}
			return nil
		})
	})
	out := make([]store.NetworkQueue, 0, len(stats))
	for _, st := range stats {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b store.NetworkQueue) int {
		if a.Network < b.Network {
			return -1
		}
		if a.Network > b.Network {
			return 1
		}
		return 0
	})
	return out, err
}
