package store

import (
	"runtime"
	"sync"
	"time"
)

// GroupWriter commits blind writes of concurrent callers together: whoever
// finds no commit running yields once to the goroutines ready to run, then
// commits everything queued so far in one transaction, and a caller returns
// once its own write is committed (or failed). Under load a captured click
// then shares the store's per-commit costs (the transaction, its
// timestamps, the hand-off to the writer) with the clicks that arrived
// while the previous commit ran; alone it commits at once, as a
// transaction of its own would.
//
// Only for writes that read nothing and whose keys no one else writes at
// the same moment (a new session under a fresh random ID): such a
// transaction cannot conflict, and each write's effect is the same as if
// it had been committed alone.
type GroupWriter struct {
	store Store
	// maxBytes bounds a group's keys and values: a store caps a
	// transaction's size (Badger at 15% of a memtable).
	maxBytes int

	mu      sync.Mutex
	queue   []*groupWrite
	running bool
}

type groupWrite struct {
	key, value []byte
	ttl        time.Duration
	done       chan groupResult
}

// writes pools groupWrites with their channels. A write goes back when its
// caller returns, by which time every result sent to it has been received.
var writes = sync.Pool{New: func() any { return &groupWrite{done: make(chan groupResult, 1)} }}

func (w *groupWrite) release() {
	w.key, w.value = nil, nil
	writes.Put(w)
}

type groupResult struct {
	err  error
	lead bool // the caller commits the next group
}

// DefaultGroupBytes bounds a group's size: well under the smallest
// transaction limit the store's options allow.
const DefaultGroupBytes = 64 << 10

// NewGroupWriter returns a GroupWriter on s whose groups hold at most
// maxBytes of keys and values (DefaultGroupBytes when 0); a single larger
// write is committed alone.
func NewGroupWriter(s Store, maxBytes int) *GroupWriter {
	if maxBytes <= 0 {
		maxBytes = DefaultGroupBytes
	}
	return &GroupWriter{store: s, maxBytes: maxBytes}
}

// Set writes key with the value and ttl (see Txn.Set) and returns once the
// write is committed.
func (g *GroupWriter) Set(key, value []byte, ttl time.Duration) error {
	w := writes.Get().(*groupWrite)
	w.key, w.value, w.ttl = key, value, ttl
	defer w.release()
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.running {
		g.mu.Unlock()
		if r := <-w.done; !r.lead {
			return r.err
		}
		g.mu.Lock()
	}
	g.running = true
	// Let the goroutines that are ready to run go first: under load they
	// are requests about to queue writes of their own, and joining this
	// group spares each of them a commit (groups of about five instead of
	// three or four on two busy CPUs). Alone, the caller is back at once.
	g.mu.Unlock()
	runtime.Gosched()
	g.mu.Lock()
	// This caller leads: its write is at the front of the queue.
	n, size := 0, 0
	for n < len(g.queue) {
		size += len(g.queue[n].key) + len(g.queue[n].value)
		if n > 0 && size > g.maxBytes {
			break
		}
		n++
	}
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	errs := g.commit(group)
	for i, o := range group[1:] {
		o.done <- groupResult{err: errs[i+1]}
	}

	g.mu.Lock()
	if len(g.queue) > 0 {
		// Hand the lead to the oldest waiter rather than commit for it:
		// this caller's own request is done and should not wait longer.
		g.queue[0].done <- groupResult{lead: true}
	} else {
		g.running = false
		g.queue = nil
	}
	g.mu.Unlock()
	return errs[0]
}

// commit writes a group in one transaction. If that fails, each write is
// tried alone, so that one bad write does not fail its neighbours.
func (g *GroupWriter) commit(group []*groupWrite) []error {
	errs := make([]error, len(group))
	err := g.store.Update(func(txn Txn) error {
		for _, w := range group {
			if err := txn.Set(w.key, w.value, w.ttl); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, w := range group {
		errs[i] = g.store.Update(func(txn Txn) error { return txn.Set(w.key, w.value, w.ttl) })
	}
	return errs
}
