package badger

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// guard refuses writes while the storage directory's filesystem has less
// than minFree bytes free for the process, or is mounted read-only. Badger
// extends its memtable and table files sparsely and writes them through
// memory maps, so a write that finds the disk full faults (SIGBUS) and
// kills the process; refusing writes while there is still room keeps every
// write Badger starts able to finish.
//
// Something else can fill the disk, though (a log, a backup), while Badger
// still flushes or compacts what it was given. So the guard also keeps a
// reserve: a file of real, allocated blocks in the directory, released the
// moment free space runs low and made again once there is room, which
// leaves Badger room to finish its own work. The store checks the guard
// every second, whether or not anything writes.
//
// Reading the filesystem's free space costs a statfs call, so a healthy
// reading is trusted for a while that shrinks as the disk fills: a write
// then never runs more than a small fraction of the margin ahead of the
// last look.
type guard struct {
	dir     string
	minFree int64
	reserve int64 // bytes of the reserve file
	every   time.Duration
	logger  *zap.Logger

	mu      sync.Mutex
	checked time.Time
	trust   time.Duration
	err     error
}

// reserveName is the reserve file in the storage directory.
const reserveName = "postback.reserve"

func newGuard(dir string, minFree, reserve int64, every time.Duration, logger *zap.Logger) *guard {
	return &guard{dir: dir, minFree: minFree, reserve: reserve, every: every, logger: logger}
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
	g.keepReserve(free)
	if free < g.minFree {
		g.err = fmt.Errorf("%w: %s has %s free, under the %s the store keeps in reserve; free some space (tracking resumes by itself) or lower min_free",
			store.ErrFull, g.dir, humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(g.minFree)))
		g.trust = g.every
		return g.err
	}
	g.err = nil
	// Trust the reading for up to a second when there is plenty of room,
	// less as the room above the minimum shrinks below 64 MiB.
	room := free - g.minFree
	g.trust = min(time.Second, time.Duration(room>>20)*time.Second/64)
	return nil
}

// roomToOpen returns nil when there is room to open the store: the
// minimum free space and the reserve on top, so that a store closed on a
// full disk does not open and close again at every byte freed.
func (g *guard) roomToOpen() error {
	if err := g.check(true); err != nil {
		return fmt.Errorf("not opening the store: %w", err)
	}
	free, _, err := freeSpace(g.dir)
	if err != nil {
		return fmt.Errorf("%w: reading free space of %s: %v", store.ErrUnavailable, g.dir, err)
	}
	if _, statErr := os.Stat(filepath.Join(g.dir, reserveName)); statErr != nil && g.reserve > 0 && free < g.minFree+g.reserve {
		return fmt.Errorf("not opening the store yet: %w: %s has %s free, want %s to open it again", store.ErrFull, g.dir,
			humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(g.minFree+g.reserve)))
	}
	return nil
}

// keepReserve releases the reserve file when free space runs under half of
// it, and makes it again once it fits above the minimum. g.mu is held.
func (g *guard) keepReserve(free int64) {
	if g.reserve <= 0 {
		return
	}
	path := filepath.Join(g.dir, reserveName)
	_, statErr := os.Stat(path)
	have := statErr == nil
	switch {
	case have && free < g.reserve/2:
		if err := os.Remove(path); err == nil {
			g.logger.Warn("the disk is nearly full: released the storage's reserve so that the store can finish what it was writing",
				zap.String("storage", g.dir), zap.String("free", humanize.IBytes(uint64(max(free, 0)))))
		}
	case !have && free >= g.minFree+g.reserve:
		if err := allocate(path, g.reserve); err != nil {
			_ = os.Remove(path)
			g.logger.Debug("making the storage's reserve", zap.Error(err))
		}
	}
}
