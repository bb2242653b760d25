package store

import "sync"

// syncGroup lets concurrent callers share one flush: a caller waits for the
// first flush that starts after it arrived, and whoever finds no flush
// running starts one. Two hundred webhooks acknowledged at once then cost a
// handful of msyncs instead of two hundred in a row.
type syncGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // flushes started
	done    uint64 // the last flush finished
	running bool
	err     error // the last finished flush's error
}

func newSyncGroup() *syncGroup {
	g := &syncGroup{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// do returns once a call of flush that started after do was called has
// finished, with that call's error.
func (g *syncGroup) do(flush func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	// A flush already running may have started before our write; only
	// the next one to start is sure to cover it.
	target := g.started + 1
	for g.done < target {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := flush()
		g.mu.Lock()
		g.running, g.done, g.err = false, n, err
		g.cond.Broadcast()
	}
	return g.err
}
