// Package stats counts what the tracker does, hour by hour, for the
// dashboard's overview: counts add up in memory and are written to the
// store's hourly counters every few seconds, by every node, so that an
// overview of 30 days sums a few thousand counters instead of reading a
// million records.
package stats

import (
	"context"
	"sync"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Tally adds up counts between flushes. Counts of a flush that failed are
// kept for the next one (up to maxPending counters; beyond, the oldest
// hours' are dropped and the overview undercounts, which a dashboard can
// bear); a process that dies loses at most the counts since the last
// flush.
type Tally struct {
	store store.Stats
	now   func() time.Time

	mu      sync.Mutex
	pending map[key]*store.Stat
}

type key struct {
	hour                                     int64
	metric, network, event, currency, result string
}

// maxPending bounds the counters held while the store cannot take them.
const maxPending = 100_000

// New returns a tally that flushes into st.
func New(st store.Stats, now func() time.Time) *Tally {
	if now == nil {
		now = time.Now
	}
	return &Tally{store: st, now: now, pending: map[key]*store.Stat{}}
}

// Add counts n (and adds sum) to a metric with labels, in the current hour.
func (t *Tally) Add(metric, network, event, currency, result string, n, sum int64) {
	h := t.now().UTC().Truncate(time.Hour)
	k := key{h.Unix(), metric, network, event, currency, result}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.pending[k]
	if st == nil {
		if len(t.pending) >= maxPending {
			return
		}
		st = &store.Stat{Hour: h, Metric: metric, Network: network, Event: event, Currency: currency, Result: result}
		t.pending[k] = st
	}
	st.Count += n
	st.Sum += sum
}

// Flush writes the counts added since the last flush.
func (t *Tally) Flush(ctx context.Context) error {
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return nil
	}
	batch := make([]store.Stat, 0, len(t.pending))
	for _, st := range t.pending {
		batch = append(batch, *st)
	}
	t.pending = map[key]*store.Stat{}
	t.mu.Unlock()
	err := t.store.AddStats(ctx, batch)
	if err != nil {
		// Put the counts back, added to whatever came meanwhile.
		t.mu.Lock()
		for _, st := range batch {
			k := key{st.Hour.Unix(), st.Metric, st.Network, st.Event, st.Currency, st.Result}
			if cur := t.pending[k]; cur != nil {
				cur.Count += st.Count
				cur.Sum += st.Sum
			} else if len(t.pending) < maxPending {
				s := st
				t.pending[k] = &s
			}
		}
		t.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx ends, then once more.
func (t *Tally) Run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = t.Flush(fctx)
			cancel()
			return
		case <-tick.C:
			_ = t.Flush(ctx)
		}
	}
}
