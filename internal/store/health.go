package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Health watches a store for the tracker. When a call finds the storage
// unreachable (ErrUnavailable, other than a full disk), later calls fail
// at once with ErrUnavailable instead of each waiting on a dead database,
// until a probe (Ping, every ProbeEvery) finds it back; so a page never
// waits on a storage that is gone. A full disk does not cut reads: the
// engine refuses writes itself, and the delivery log stays readable. Every
// change of state is reported to OnChange.
type Health struct {
	Store
	// ProbeEvery is how often a store that is down is probed; default 2s.
	ProbeEvery time.Duration
	// OnChange is told of each change: nil when the store serves again,
	// else why it does not.
	OnChange func(err error)

	mu      sync.Mutex
	down    error // why calls fail fast; nil while up
	full    error // why writes are refused; nil while there is room
	probing bool
	closed  chan struct{}
	once    sync.Once
}

// NewHealth watches s.
func NewHealth(s Store, onChange func(error)) *Health {
	return &Health{Store: s, OnChange: onChange, closed: make(chan struct{})}
}

// Err reports why the store cannot serve now: nil when it can.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down != nil {
		return h.down
	}
	return h.full
}

// Check probes the store now and updates the state.
func (h *Health) Check(ctx context.Context) error {
	err := h.Store.Ping(ctx)
	h.observe(err)
	return err
}

// observe updates the state after a call returned err.
func (h *Health) observe(err error) {
	if err != nil && !errors.Is(err, ErrUnavailable) {
		return // not about the storage
	}
	h.mu.Lock()
	before := h.stateLocked()
	switch {
	case err == nil:
		h.down, h.full = nil, nil
	case errors.Is(err, ErrFull):
		h.full = err
	default:
		h.down = err
		if !h.probing {
			h.probing = true
			go h.probe()
		}
	}
	after := h.stateLocked()
	h.mu.Unlock()
	if kind(before) != kind(after) && h.OnChange != nil {
		h.OnChange(after)
	}
}

// kind sorts a state: 0 serving, 1 full (reads only), 2 unreachable.
func kind(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrFull):
		return 1
	}
	return 2
}

func (h *Health) stateLocked() error {
	if h.down != nil {
		return h.down
	}
	return h.full
}

// probe pings the store until it answers.
func (h *Health) probe() {
	every := h.ProbeEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := h.Store.Ping(ctx)
		cancel()
		if err == nil || errors.Is(err, ErrFull) {
			h.mu.Lock()
			h.probing = false
			h.mu.Unlock()
			h.observe(err)
			return
		}
	}
}

// Close stops probing and closes the store.
func (h *Health) Close() error {
	h.once.Do(func() { close(h.closed) })
	return h.Store.Close()
}

// gate fails fast while the store is down.
func (h *Health) gate() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// call runs fn unless the store is down, and observes its error.
func call[T any](h *Health, fn func() (T, error)) (T, error) {
	if err := h.gate(); err != nil {
		var zero T
		return zero, err
	}
	v, err := fn()
	h.observe(err)
	return v, err
}

func do(h *Health, fn func() error) error {
	_, err := call(h, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Ping implements Store.
func (h *Health) Ping(ctx context.Context) error { return h.Check(ctx) }

// CreateSession implements Sessions.
func (h *Health) CreateSession(ctx context.Context, s *record.Session) error {
	return do(h, func() error { return h.Store.CreateSession(ctx, s) })
}

// AddTouchpoints implements Sessions.
func (h *Health) AddTouchpoints(ctx context.Context, id string, tps []record.Touchpoint, ga string, limit int, now time.Time) error {
	return do(h, func() error { return h.Store.AddTouchpoints(ctx, id, tps, ga, limit, now) })
}

// Session implements Sessions.
func (h *Health) Session(ctx context.Context, id string, now time.Time) (*record.Session, error) {
	return call(h, func() (*record.Session, error) { return h.Store.Session(ctx, id, now) })
}

// FindClicks implements Sessions.
func (h *Health) FindClicks(ctx context.Context, clickID string, now time.Time, limit int) ([]ClickMatch, error) {
	return call(h, func() ([]ClickMatch, error) { return h.Store.FindClicks(ctx, clickID, now, limit) })
}

// EraseSession implements Sessions.
func (h *Health) EraseSession(ctx context.Context, id string, now, keep time.Time) (bool, error) {
	return call(h, func() (bool, error) { return h.Store.EraseSession(ctx, id, now, keep) })
}

// FindOrder implements Ledger.
func (h *Health) FindOrder(ctx context.Context, ids []string, now time.Time) (OrderEntry, error) {
	return call(h, func() (OrderEntry, error) { return h.Store.FindOrder(ctx, ids, now) })
}

// Record implements Ledger.
func (h *Health) Record(ctx context.Context, r Recording) (Recorded, error) {
	return call(h, func() (Recorded, error) { return h.Store.Record(ctx, r) })
}

// Conversion implements Ledger.
func (h *Health) Conversion(ctx context.Context, id string, now time.Time) (*record.Conversion, error) {
	return call(h, func() (*record.Conversion, error) { return h.Store.Conversion(ctx, id, now) })
}

// Conversions implements Ledger.
func (h *Health) Conversions(ctx context.Context, q ConversionQuery, now time.Time) ([]record.Conversion, string, error) {
	var next string
	cs, err := call(h, func() ([]record.Conversion, error) {
		var err error
		var cs []record.Conversion
		cs, next, err = h.Store.Conversions(ctx, q, now)
		return cs, err
	})
	return cs, next, err
}

// SessionConversions implements Ledger.
func (h *Health) SessionConversions(ctx context.Context, id string, since, now time.Time) (int, error) {
	return call(h, func() (int, error) { return h.Store.SessionConversions(ctx, id, since, now) })
}

// Claim implements Queue.
func (h *Health) Claim(ctx context.Context, network, owner string, limit int, now, lease time.Time) ([]record.Delivery, time.Time, error) {
	var next time.Time
	ds, err := call(h, func() ([]record.Delivery, error) {
		var err error
		var ds []record.Delivery
		ds, next, err = h.Store.Claim(ctx, network, owner, limit, now, lease)
		return ds, err
	})
	return ds, next, err
}

// Complete implements Queue.
func (h *Health) Complete(ctx context.Context, id, owner string, at record.Attempt, req record.Request, keep time.Time) error {
	return do(h, func() error { return h.Store.Complete(ctx, id, owner, at, req, keep) })
}

// Retry implements Queue.
func (h *Health) Retry(ctx context.Context, id, owner string, at record.Attempt, req record.Request, next time.Time) error {
	return do(h, func() error { return h.Store.Retry(ctx, id, owner, at, req, next) })
}

// Bury implements Queue.
func (h *Health) Bury(ctx context.Context, id, owner string, at *record.Attempt, req record.Request, reason string, keep time.Time) error {
	return do(h, func() error { return h.Store.Bury(ctx, id, owner, at, req, reason, keep) })
}

// Release implements Queue.
func (h *Health) Release(ctx context.Context, id, owner string, due time.Time) error {
	return do(h, func() error { return h.Store.Release(ctx, id, owner, due) })
}

// Rescue implements Queue.
func (h *Health) Rescue(ctx context.Context, now time.Time) (int, error) {
	return call(h, func() (int, error) { return h.Store.Rescue(ctx, now) })
}

// Replay implements Queue.
func (h *Health) Replay(ctx context.Context, id string, now time.Time) (*record.Delivery, error) {
	return call(h, func() (*record.Delivery, error) { return h.Store.Replay(ctx, id, now) })
}

// ReplayDead implements Queue.
func (h *Health) ReplayDead(ctx context.Context, network string, now time.Time) (int, error) {
	return call(h, func() (int, error) { return h.Store.ReplayDead(ctx, network, now) })
}

// Delivery implements Queue.
func (h *Health) Delivery(ctx context.Context, id string, now time.Time) (*record.Delivery, error) {
	return call(h, func() (*record.Delivery, error) { return h.Store.Delivery(ctx, id, now) })
}

// Deliveries implements Queue.
func (h *Health) Deliveries(ctx context.Context, q DeliveryQuery, now time.Time) ([]record.Delivery, string, error) {
	var next string
	ds, err := call(h, func() ([]record.Delivery, error) {
		var err error
		var ds []record.Delivery
		ds, next, err = h.Store.Deliveries(ctx, q, now)
		return ds, err
	})
	return ds, next, err
}

// QueueStats implements Queue.
func (h *Health) QueueStats(ctx context.Context, now time.Time) ([]NetworkQueue, error) {
	return call(h, func() ([]NetworkQueue, error) { return h.Store.QueueStats(ctx, now) })
}

// LogWebhook implements Webhooks.
func (h *Health) LogWebhook(ctx context.Context, e record.WebhookEntry) error {
	return do(h, func() error { return h.Store.LogWebhook(ctx, e) })
}

// Webhook implements Webhooks.
func (h *Health) Webhook(ctx context.Context, id string, now time.Time) (*record.WebhookEntry, error) {
	return call(h, func() (*record.WebhookEntry, error) { return h.Store.Webhook(ctx, id, now) })
}

// WebhookLog implements Webhooks.
func (h *Health) WebhookLog(ctx context.Context, q WebhookQuery, now time.Time) ([]record.WebhookEntry, string, error) {
	var next string
	es, err := call(h, func() ([]record.WebhookEntry, error) {
		var err error
		var es []record.WebhookEntry
		es, next, err = h.Store.WebhookLog(ctx, q, now)
		return es, err
	})
	return es, next, err
}

// AddStats implements Stats.
func (h *Health) AddStats(ctx context.Context, stats []Stat) error {
	return do(h, func() error { return h.Store.AddStats(ctx, stats) })
}

// Stats implements Stats.
func (h *Health) Stats(ctx context.Context, since, until time.Time) ([]Stat, error) {
	return call(h, func() ([]Stat, error) { return h.Store.Stats(ctx, since, until) })
}

// MetaGetOrCreate implements Meta.
func (h *Health) MetaGetOrCreate(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	return call(h, func() ([]byte, error) { return h.Store.MetaGetOrCreate(ctx, name, create) })
}

// Interface guards
var _ Store = (*Health)(nil)
