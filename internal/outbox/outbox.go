package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Retention defaults.
const (
	// DefaultLogRetention keeps delivered records (the delivery log).
	DefaultLogRetention = 30 * 24 * time.Hour
	// DefaultDeadRetention keeps dead letters until replayed or expired.
	DefaultDeadRetention = 90 * 24 * time.Hour
	// DefaultIdempotencyTTL keeps idempotency markers, so a thank-you page
	// revisited months later still fires nothing.
	DefaultIdempotencyTTL = 400 * 24 * time.Hour
	// DefaultMaxAge is how long a delivery is retried before it is dead.
	DefaultMaxAge = 72 * time.Hour
)

// ErrNotFound is returned for an unknown delivery or conversion.
var ErrNotFound = errors.New("not found")

// Outbox is the queue in the store.
type Outbox struct {
	store    store.Store
	settings atomic.Pointer[Settings]
	// notify tells the dispatcher which networks have new deliveries.
	notify func(networks ...string)
}

// Settings are the outbox's retention and durability; a config reload
// replaces them while the outbox keeps running.
type Settings struct {
	// LogRetention, DeadRetention and IdempotencyTTL; zero takes the defaults.
	LogRetention   time.Duration
	DeadRetention  time.Duration
	IdempotencyTTL time.Duration
	// Durable syncs the store after each recorded conversion, so queued
	// postbacks survive power loss, not only a process crash.
	Durable bool
}

// Configure replaces the settings; it is safe while deliveries flow.
func (o *Outbox) Configure(s Settings) { o.settings.Store(&s) }

func (o *Outbox) get() *Settings { return o.settings.Load() }

// New returns an outbox on s.
func New(s store.Store) *Outbox {
	o := &Outbox{store: s, notify: func(...string) {}}
	o.Configure(Settings{})
	return o
}

// Store returns the outbox's store.
func (o *Outbox) Store() store.Store { return o.store }

// RecordResult says what Record wrote.
type RecordResult struct {
	// Conversion is the stored conversion, nil when everything was a duplicate.
	Conversion *Conversion
	// Queued are the deliveries written.
	Queued []string
	// Duplicates are idempotency keys already recorded earlier.
	Duplicates []string
	// SeenEvent is true when the once key was already recorded: the whole
	// call was a retry of something processed before.
	SeenEvent bool
}

// Record writes a conversion and its deliveries in one transaction, together
// with their idempotency markers. A delivery whose key is already marked is
// a duplicate and is left out; once, if not nil, is a marker for the whole
// call (a webhook event ID) that makes a second call with it a no-op; extra,
// if not nil, writes more records in the same transaction. When Record
// returns nil the deliveries are committed and will be sent.
func (o *Outbox) Record(conv Conversion, deliveries []Delivery, once []byte, extra func(store.Txn) error) (RecordResult, error) {
	var res RecordResult
	t := now()
	err := o.store.Update(func(txn store.Txn) error {
		res = RecordResult{}
		if once != nil {
			if _, err := txn.Get(once); err == nil {
				res.SeenEvent = true
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		c := conv
		c.Deliveries, c.Skipped = nil, nil
		for _, d := range deliveries {
			mk := store.Key(store.PrefixIdempotent, d.Key)
			if _, err := txn.Get(mk); err == nil {
				res.Duplicates = append(res.Duplicates, d.Key)
				c.Skipped = append(c.Skipped, d.Network)
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			d.ConversionID = c.ID
			d.State = StateQueued
			d.CreatedAt, d.QueuedAt, d.NextAttempt = t, t, t
			if d.MaxAge <= 0 {
				d.MaxAge = DefaultMaxAge
			}
			if err := txn.Set(mk, []byte(d.ID), o.idempotencyTTL()); err != nil {
				return err
			}
			if err := putDelivery(txn, &d, 0); err != nil {
				return err
			}
			if err := txn.Set(store.DueKey(d.Network, d.NextAttempt, d.ID), nil, 0); err != nil {
				return err
			}
			c.Deliveries = append(c.Deliveries, d.ID)
			res.Queued = append(res.Queued, d.ID)
		}
		if once != nil {
			if err := txn.Set(once, []byte(c.ID), o.idempotencyTTL()); err != nil {
				return err
			}
		}
		if extra != nil {
			if err := extra(txn); err != nil {
				return err
			}
		}
		if len(c.Deliveries) == 0 && (len(c.Credits) == 0 || len(res.Duplicates) > 0) {
			return nil // nothing credited, or a duplicate: no new conversion
		}
		c.CreatedAt = t
		v, err := json.Marshal(&c)
		if err != nil {
			return fmt.Errorf("encoding conversion: %w", err)
		}
		if err := txn.Set(store.Key(store.PrefixConversion, c.ID), v, o.logRetention()); err != nil {
			return err
		}
		res.Conversion = &c
		return nil
	})
	if err != nil {
		return RecordResult{}, fmt.Errorf("recording conversion: %w", err)
	}
	if o.get().Durable && len(res.Queued) > 0 {
		if err := o.store.Sync(); err != nil {
			return res, fmt.Errorf("syncing outbox: %w", err)
		}
	}
	if len(res.Queued) > 0 {
		nets := make([]string, 0, len(deliveries))
		for _, d := range deliveries {
			nets = append(nets, d.Network)
		}
		o.notify(nets...)
	}
	return res, nil
}

func (o *Outbox) idempotencyTTL() time.Duration {
	if ttl := o.get().IdempotencyTTL; ttl > 0 {
		return ttl
	}
	return DefaultIdempotencyTTL
}

func (o *Outbox) logRetention() time.Duration {
	if ttl := o.get().LogRetention; ttl > 0 {
		return ttl
	}
	return DefaultLogRetention
}

func (o *Outbox) deadRetention() time.Duration {
	if ttl := o.get().DeadRetention; ttl > 0 {
		return ttl
	}
	return DefaultDeadRetention
}

func putDelivery(txn store.Txn, d *Delivery, ttl time.Duration) error {
	return txn.Set(store.Key(store.PrefixDelivery, d.ID), encodeDelivery(d), ttl)
}

func getDelivery(txn store.Txn, id string) (*Delivery, error) {
	v, err := txn.Get(store.Key(store.PrefixDelivery, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeDelivery(id, v)
}

// Delivery returns one delivery.
func (o *Outbox) Delivery(id string) (*Delivery, error) {
	return store.Read(o.store, func(txn store.Txn) (*Delivery, error) { return getDelivery(txn, id) })
}

// Filter selects deliveries in a listing.
type Filter struct {
	State   State
	Network string
	Limit   int
}

// Deliveries lists deliveries, newest first.
func (o *Outbox) Deliveries(f Filter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var out []Delivery
	prefix := []byte(store.PrefixDelivery)
	if f.State == StateDead {
		prefix = []byte(store.PrefixDead)
	}
	err := o.store.View(func(txn store.Txn) error {
		return txn.ScanReverse(prefix, func(k, v []byte) error {
			var d *Delivery
			if f.State == StateDead {
				var err error
				if d, err = getDelivery(txn, string(k[len(prefix):])); err != nil {
					return nil // expired between the index and the record
				}
			} else {
				var err error
				if d, err = decodeDelivery(string(k[len(prefix):]), v); err != nil {
					return err
				}
			}
			if (f.State == "" || d.State == f.State) && (f.Network == "" || d.Network == f.Network) {
				out = append(out, *d)
			}
			if len(out) >= f.Limit {
				return store.ErrStop
			}
			return nil
		})
	})
	return out, err
}

// Conversions lists conversions, newest first.
func (o *Outbox) Conversions(limit int) ([]Conversion, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []Conversion
	err := o.store.View(func(txn store.Txn) error {
		return txn.ScanReverse([]byte(store.PrefixConversion), func(_, v []byte) error {
			var c Conversion
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding conversion: %w", err)
			}
			out = append(out, c)
			if len(out) >= limit {
				return store.ErrStop
			}
			return nil
		})
	})
	return out, err
}

// Replay queues a dead or delivered delivery again, now. Its max-age clock
// starts over; its attempt log is kept.
func (o *Outbox) Replay(id string) (*Delivery, error) {
	var d *Delivery
	err := o.store.Update(func(txn store.Txn) error {
		var err error
		if d, err = getDelivery(txn, id); err != nil {
			return err
		}
		if d.State != StateDead && d.State != StateDelivered {
			return fmt.Errorf("delivery %s is %s: only dead or delivered deliveries can be replayed", id, d.State)
		}
		t := now()
		d.State, d.QueuedAt, d.NextAttempt, d.Reason = StateQueued, t, t, "replayed"
		if err := txn.Delete(store.Key(store.PrefixDead, id)); err != nil {
			return err
		}
		if err := putDelivery(txn, d, 0); err != nil {
			return err
		}
		return txn.Set(store.DueKey(d.Network, t, id), nil, 0)
	})
	if err != nil {
		return nil, err
	}
	o.notify(d.Network)
	return d, nil
}

// Pending counts queued and retrying deliveries per network.
func (o *Outbox) Pending() (map[string]int, error) {
	out := map[string]int{}
	err := o.store.View(func(txn store.Txn) error {
		return txn.Scan([]byte(store.PrefixDue), nil, func(k, _ []byte) error {
			rest := k[len(store.PrefixDue):]
			for i, c := range rest {
				if c == '/' {
					out[string(rest[:i])]++
					break
				}
			}
			return nil
		})
	})
	return out, err
}
