package store

import (
	"runtime"
	"sync"
)

// Group commits the items of concurrent callers together: whoever finds no
// commit running yields once to the goroutines ready to run, then commits
// everything queued so far with one call of the commit function, and a
// caller returns once its own item is committed (or failed). Under load an
// item then shares the store's per-commit and per-record costs with the
// items that arrived while the previous commit ran; alone it is committed
// at once.
//
// The commit function decides what a group becomes in the store (a
// transaction of many records, or one record holding them all) and reports
// one error per item. It runs on the leading caller's goroutine, one group
// at a time.
type Group[T any] struct {
	commit func(items []T) []error
	size   func(item T) int
	// maxBytes bounds a group's total size: a store caps a transaction's
	// size (Badger at 15% of a memtable).
	maxBytes int

	mu      sync.Mutex
	queue   []*member[T]
	running bool
	members sync.Pool // *member[T], with their channels
}

type member[T any] struct {
	item T
	done chan groupResult
}

type groupResult struct {
	err  error
	lead bool // the caller commits the next group
}

// DefaultGroupBytes bounds a group's size: well under the smallest
// transaction limit the store's options allow.
const DefaultGroupBytes = 64 << 10

// NewGroup returns a Group that commits with commit, whose groups hold at
// most maxBytes by size (DefaultGroupBytes when 0); a single larger item is
// committed alone.
func NewGroup[T any](commit func(items []T) []error, size func(item T) int, maxBytes int) *Group[T] {
	if maxBytes <= 0 {
		maxBytes = DefaultGroupBytes
	}
	g := &Group[T]{commit: commit, size: size, maxBytes: maxBytes}
	g.members.New = func() any { return &member[T]{done: make(chan groupResult, 1)} }
	return g
}

// Do commits item with the next group and returns its error.
func (g *Group[T]) Do(item T) error {
	m := g.members.Get().(*member[T])
	m.item = item
	// Every result sent to m has been received by the time Do returns.
	defer func() {
		var zero T
		m.item = zero
		g.members.Put(m)
	}()
	g.mu.Lock()
	g.queue = append(g.queue, m)
	if g.running {
		g.mu.Unlock()
		if r := <-m.done; !r.lead {
			return r.err
		}
		g.mu.Lock()
	} else {
		g.running = true
		// Let the goroutines that are ready to run go first: under load
		// they are requests about to queue items of their own, and joining
		// this group spares each of them a commit (about five items per
		// commit instead of three or four on two busy CPUs). Alone, the
		// caller is back at once.
		g.mu.Unlock()
		runtime.Gosched()
		g.mu.Lock()
	}
	// This caller leads: its item is at the front of the queue.
	n, size := 0, 0
	for n < len(g.queue) {
		size += g.size(g.queue[n].item)
		if n > 0 && size > g.maxBytes {
			break
		}
		n++
	}
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	items := make([]T, n)
	for i, o := range group {
		items[i] = o.item
	}
	errs := g.commit(items)
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
