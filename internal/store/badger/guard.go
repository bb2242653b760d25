package badger

import (
	"fmt"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// guard refuses writes while the storage directory's filesystem has less
// than minFree bytes free for the process, or is mounted read-only. Badger
// extends its memtable and table files sparsely and writes them through
// memory maps, so a write that finds the disk full faults (SIGBUS) and
// kills the process; refusing writes while there is still room keeps every
// write Badger starts able to finish.
//
// Reading the filesystem's free space costs a statfs call, so a healthy
// reading is trusted for a while that shrinks as the disk fills: a write
// then never runs more than a small fraction of the margin ahead of the
// last look.
type guard struct {
	dir     string
	minFree int64
	every   time.Duration

	mu      sync.Mutex
	checked time.Time
	trust   time.Duration
	err     error
}

func newGuard(dir string, minFree int64, every time.Duration) *guard {
	return &guard{dir: dir, minFree: minFree, every: every}
}

// check returns nil when writes are allowed, or an error wrapping
// store.ErrFull that says what is wrong and how to fix it. force reads the
// filesystem now.
func (g *guard) check(force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !force && now.Sub(g.checked) < g.trust {
		return g.err
	}
	g.checked = now
	free, readOnly, err := freeSpace(g.dir)
	if err != nil {
		g.err, g.trust = fmt.Errorf("%w: reading free space of %s: %v", store.ErrUnavailable, g.dir, err), g.every
		return g.err
	}
	if readOnly {
		g.err, g.trust = fmt.Errorf("%w: %s is on a read-only filesystem; remount it read-write", store.ErrFull, g.dir), g.every
		return g.err
	}
	if free < g.minFree {
		g.err = fmt.Errorf("%w: %s has %s free, under the %s the store keeps in reserve; free some space (tracking resumes by itself) or lower min_free",
			store.ErrFull, g.dir, humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(g.minFree)))
		g.trust = g.every
		return g.err
	}
	g.err = nil
	// Trust the reading for up to a second when there is plenty of room,
	// less as the room above the reserve shrinks below 64 MiB.
	room := free - g.minFree
	g.trust = min(time.Second, time.Duration(room>>20)*time.Second/64)
	return nil
}
