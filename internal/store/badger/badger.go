// Package badger is the embedded storage engine: the store ports on one
// Badger v4 database in a directory of the Caddy host. It is the default,
// for one Caddy; several Caddy nodes share the postgres engine instead.
//
// The engine never takes the site down: it opens in the background when the
// directory is missing, read-only, full or unopenable (every call answers
// store.ErrUnavailable until it is open), and a free-space guard refuses
// writes before Badger, which writes through memory-mapped files that it
// extends sparsely, could fault on a full disk (SIGBUS kills the process).
// When free space falls under the guard's minimum, the engine also closes
// the database, so that no flush or compaction of Badger's own can run into
// a disk that something else fills to the last byte, and opens it again by
// itself once there is room.
package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Options configures the engine. Zero fields take the defaults named.
type Options struct {
	// Dir is the data directory; empty with InMemory.
	Dir string
	// InMemory keeps everything in memory (tests, demos): nothing persists.
	InMemory bool
	// MinFree is the free space, in bytes, under which writes are refused
	// (store.ErrFull) so that Badger never runs out of room in the middle
	// of a write. Default 256 MiB: room for Badger's next memtable file,
	// a flush and the compactions it starts.
	MinFree int64
	// Reserve is the size of the reserve file the store keeps in its
	// directory and releases when something else fills the disk (see
	// guard). Default: half of MinFree.
	Reserve int64
	// SyncWrites makes every commit reach the disk before it returns, to
	// survive power loss. Without it, commits survive a crash of the
	// process (Badger writes through mmap). Default false.
	SyncWrites bool
	// MemTableSize in bytes; default 4 MiB. With sessions under random
	// keys, small memtables and tables make Badger flush, compact and
	// msync tables all the time: with 2 MiB memtables and 256 KiB tables
	// a new click cost 1.8 times as much on a store of 300,000 sessions.
	// Larger ones cost memory: 8 MiB memtables and 1 MiB tables made
	// clicks another 20% cheaper, and added 60 MB to the heap of a
	// draining backlog of 100,000 deliveries.
	MemTableSize int64
	// RetryEvery is how often an engine that could not open tries again,
	// and how often the free-space guard looks again once it refused a
	// write. Default 2s.
	RetryEvery time.Duration
	// PurgeEvery is how soon after an erasure the erased data is gone from
	// the store's files (see Purge). Default 1h.
	PurgeEvery time.Duration
	// ReclaimEvery is how often the records that expired are removed from
	// the store's files (see Reclaim). Default 24h.
	ReclaimEvery time.Duration
	// Logger receives the engine's and Badger's messages (Badger's Info is
	// demoted to Debug).
	Logger *zap.Logger
}

// Store is the Badger engine.
type Store struct {
	opts   Options
	logger *zap.Logger
	// dbMu is held for reading while the database is used and for writing
	// while it is opened or closed: Badger panics on an iterator of a
	// closed database.
	dbMu   sync.RWMutex
	db     *badger.DB // nil while not open
	guard  *guard
	floors floors

	mu      sync.Mutex // guards openErr
	openErr error      // why the database is not open, while it is not

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	// reopening is set while openLoop runs.
	reopening atomic.Bool
	// full asks maintain to look at the free space now: a write was refused.
	full chan struct{}
	// erased is set by an erasure and cleared by the purge that follows it.
	erased atomic.Bool
	// compacting is set while a purge or reclaim started by maintain runs.
	compacting atomic.Bool
}

// ErrLocked means another process holds the directory.
var ErrLocked = errors.New("storage directory is locked by another process")

// Open returns the engine for a directory. It fails only for a directory
// that another process holds (another Caddy: use `caddy reload` to change
// its config). Any other reason it cannot open now (the directory missing
// and not creatable, read-only, full, or Badger failing) is logged, the
// engine answers store.ErrUnavailable, and it keeps trying in the
// background until it opens.
func Open(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 4 << 20
	}
	if o.MinFree == 0 {
		o.MinFree = 256 << 20
	}
	if o.Reserve == 0 {
		o.Reserve = o.MinFree / 2
	}
	if o.RetryEvery == 0 {
		o.RetryEvery = 2 * time.Second
	}
	if o.PurgeEvery == 0 {
		o.PurgeEvery = time.Hour
	}
	if o.ReclaimEvery == 0 {
		o.ReclaimEvery = 24 * time.Hour
	}
	if o.InMemory {
		o.Dir = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{opts: o, logger: o.Logger, ctx: ctx, cancel: cancel, floors: floors{m: map[string]*floor{}}, full: make(chan struct{}, 1)}
	if !o.InMemory {
		s.guard = newGuard(o.Dir, o.MinFree, o.Reserve, o.RetryEvery, o.Logger)
	}
	err := s.tryOpen()
	if errors.Is(err, ErrLocked) {
		cancel()
		return nil, err
	}
	if err != nil {
		s.logger.Error("postback storage is not available; pages are served, capture is skipped and webhooks answer 503 until it is",
			zap.String("storage", o.Dir), zap.Error(err))
		s.startOpenLoop()
	}
	s.wg.Add(1)
	go s.maintain()
	return s, nil
}

// tryOpen opens Badger if the directory allows it now.
func (s *Store) tryOpen() error {
	o := s.opts
	if !o.InMemory {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return s.setOpenErr(fmt.Errorf("creating storage directory: %w", err))
		}
		if err := s.guard.roomToOpen(); err != nil {
			return s.setOpenErr(err)
		}
	}
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithLogger(badgerLogger{o.Logger.Named("badger").Sugar()}).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(5).
		WithNumLevelZeroTablesStall(10).
		WithBaseTableSize(1 << 20).
		WithValueLogFileSize(64 << 20).
		// Records stay in the LSM tree (the largest, a kept webhook
		// payload, is far below this): deliveries are rewritten as they
		// are sent, and every version written to the value log would stay
		// mapped until its GC.
		WithValueThreshold(256 << 10).
		WithBlockCacheSize(0).
		WithCompression(options.None).
		WithIndexCacheSize(0).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithSyncWrites(o.SyncWrites).
		WithMetricsEnabled(false)
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return fmt.Errorf("opening store %s: %w: this is usually another running Caddy; use 'caddy reload' to change its config (%v)", o.Dir, ErrLocked, err)
		}
		return s.setOpenErr(fmt.Errorf("opening store %s: %w", o.Dir, err))
	}
	s.dbMu.Lock()
	s.db = db
	s.dbMu.Unlock()
	s.setOpenErr(nil)
	return nil
}

func (s *Store) setOpenErr(err error) error {
	s.mu.Lock()
	s.openErr = err
	s.mu.Unlock()
	return err
}

// startOpenLoop starts openLoop unless it runs already.
func (s *Store) startOpenLoop() {
	if s.reopening.CompareAndSwap(false, true) {
		s.wg.Add(1)
		go s.openLoop()
	}
}

// openLoop retries opening until it succeeds or the store is closed.
func (s *Store) openLoop() {
	defer s.wg.Done()
	defer s.reopening.Store(false)
	t := time.NewTicker(s.opts.RetryEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if err := s.tryOpen(); err == nil {
			s.logger.Warn("postback storage is available again; tracking resumes", zap.String("storage", s.opts.Dir))
			return
		}
	}
}

// maintain looks at the free space every second (so that the reserve is
// released as soon as something else fills the disk), runs the value-log
// GC, purges after erasures, reclaims expired records, and resets the
// claim floors now and then (see floors).
func (s *Store) maintain() {
	defer s.wg.Done()
	gc := time.NewTicker(10 * time.Minute)
	defer gc.Stop()
	reset := time.NewTicker(time.Minute)
	defer reset.Stop()
	space := time.NewTicker(time.Second)
	defer space.Stop()
	purge := time.NewTicker(s.opts.PurgeEvery)
	defer purge.Stop()
	reclaim := time.NewTicker(s.opts.ReclaimEvery)
	defer reclaim.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-purge.C:
			if s.erased.Load() {
				s.aside(func() {
					if err := s.Purge(); err != nil {
						s.logger.Warn("purging erased data from the store's files; trying again at the next purge", zap.Error(err))
					}
				})
			}
		case <-reclaim.C:
			s.aside(func() {
				n, err := s.Reclaim()
				if err != nil {
					s.logger.Warn("removing expired records from the store's files; trying again at the next reclaim", zap.Error(err))
				} else if n > 0 {
					s.logger.Info("removed expired records from the store's files", zap.Int("records", n))
				}
			})
		case <-s.full:
			if err := s.guard.check(true); errors.Is(err, store.ErrFull) {
				s.suspend(err)
			}
		case <-space.C:
			if s.guard != nil {
				if err := s.guard.check(true); errors.Is(err, store.ErrFull) {
					s.suspend(err)
				}
			}
		case <-reset.C:
			s.floors.reset()
		case <-gc.C:
			s.runValueLogGC()
		}
	}
}

// aside runs a purge or a reclaim on a goroutine of its own, unless one
// is still running: they take seconds on a large store, and maintain must
// go on watching the free space meanwhile.
func (s *Store) aside(fn func()) {
	if !s.compacting.CompareAndSwap(false, true) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.compacting.Store(false)
		fn()
	}()
}

// runValueLogGC reclaims value-log space while there is room to write.
func (s *Store) runValueLogGC() {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil || s.opts.InMemory || s.guard.check(false) != nil {
		return
	}
	for range 10 {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.logger.Warn("badger value log GC", zap.Error(err))
			}
			return
		}
	}
}

// pPurge is the prefix of a throwaway key that makes Purge's DropPrefix
// flush the memtables (Badger drops nothing, and flushes nothing, for a
// prefix that holds no key).
const pPurge = "z/"

// Purge removes from the store's files what erasures removed from its
// records: it flushes the memtables (their write-ahead logs are deleted)
// and compacts every level into the last, which drops every older version
// of a rewritten record and every deleted key. Writes wait while it runs:
// on a store of a million sessions, seconds. It runs by itself within
// PurgeEvery of an erasure.
func (s *Store) Purge() error {
	s.erased.Store(false)
	if s.opts.InMemory {
		return nil
	}
	if err := s.update(func(txn *badger.Txn) error { return set(txn, []byte(pPurge+"flush"), time.Time{}, nil) }); err != nil {
		s.erased.Store(true)
		return err
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	db, err := s.readable()
	if err == nil {
		if err = db.DropPrefix([]byte(pPurge)); err == nil {
			err = db.Flatten(2)
		}
	}
	if err != nil {
		s.erased.Store(true)
		return fmt.Errorf("purging the store's files: %w", classify(err))
	}
	return nil
}

// suspend closes the database while the disk is full (see the package
// doc), and starts trying to open it again.
func (s *Store) suspend(why error) {
	s.dbMu.Lock()
	db := s.db
	s.db = nil
	if db != nil {
		s.setOpenErr(why)
	}
	s.dbMu.Unlock()
	if db == nil {
		return
	}
	s.logger.Error("postback storage closed while the disk is full, so that nothing of the store writes into it; it opens again by itself when there is room",
		zap.String("storage", s.opts.Dir), zap.Error(why))
	if err := db.Close(); err != nil {
		s.logger.Warn("closing the store", zap.Error(err))
	}
	s.startOpenLoop()
}

// Close stops the background work and closes the database. Later calls
// do nothing.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.dbMu.Lock()
		defer s.dbMu.Unlock()
		if s.db != nil {
			err = s.db.Close()
			s.db = nil
		}
	})
	return err
}

// Ping implements store.Store: the database is open and the free-space
// guard allows writes.
func (s *Store) Ping(context.Context) error {
	s.dbMu.RLock()
	_, err := s.readable()
	s.dbMu.RUnlock()
	if err != nil {
		return err
	}
	if s.guard != nil {
		return s.guard.check(true)
	}
	return nil
}

// readable returns the open database, or why there is none; s.dbMu is
// held for reading.
func (s *Store) readable() (*badger.DB, error) {
	if s.db != nil {
		return s.db, nil
	}
	s.mu.Lock()
	why := s.openErr
	s.mu.Unlock()
	if why == nil {
		why = errors.New("the store is closed")
	}
	if errors.Is(why, store.ErrUnavailable) {
		return nil, why
	}
	return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, why)
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	db, err := s.readable()
	if err != nil {
		return err
	}
	return classify(db.View(fn))
}

// update runs fn in a read-write transaction and commits it, after the
// free-space guard allowed it. A commit that conflicts with a concurrent
// one is retried, so fn must be safe to run more than once.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	db, err := s.readable()
	if err != nil {
		return err
	}
	if s.guard != nil {
		if err := s.guard.check(false); err != nil {
			if errors.Is(err, store.ErrFull) {
				select {
				case s.full <- struct{}{}:
				default:
				}
			}
			return err
		}
	}
	for attempt := range 20 {
		err = db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return classify(err)
		}
		time.Sleep(time.Duration(rand.IntN(100*(attempt+1))) * time.Microsecond)
	}
	return fmt.Errorf("store update: %w", err)
}

// classify maps Badger's and the filesystem's faults onto
// store.ErrUnavailable; other errors pass unchanged.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrDBClosed), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS),
		errors.Is(err, syscall.EIO), errors.Is(err, syscall.EDQUOT), errors.Is(err, badger.ErrBlockedWrites):
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return err
}

// Values carry their expiry (Unix nanoseconds, 0 for none) in front of the
// payload, so that a read decides liveness by the caller's time; Badger's
// own TTL, set to the same time, removes them physically later.
const expiryLen = 8

func encode(expires time.Time, payload []byte) []byte {
	b := make([]byte, expiryLen+len(payload))
	if !expires.IsZero() {
		binary.BigEndian.PutUint64(b, uint64(max(expires.UnixNano(), 1)))
	}
	copy(b[expiryLen:], payload)
	return b
}

// decode returns the payload of a stored value and whether it is live at now.
func decode(v []byte, now time.Time) ([]byte, bool) {
	if len(v) < expiryLen {
		return nil, false
	}
	exp := binary.BigEndian.Uint64(v)
	return v[expiryLen:], exp == 0 || now.UnixNano() < int64(exp)
}

// set writes key with its expiry (zero: none).
func set(txn *badger.Txn, key []byte, expires time.Time, payload []byte) error {
	e := badger.NewEntry(key, encode(expires, payload))
	if !expires.IsZero() {
		e.ExpiresAt = uint64(max(expires.Unix()+1, 1))
	}
	if err := txn.SetEntry(e); err != nil {
		return fmt.Errorf("store set: %w", err)
	}
	return nil
}

// setJSON writes a record as JSON.
func setJSON(txn *badger.Txn, key []byte, expires time.Time, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	return set(txn, key, expires, b)
}

// get returns a copy of the live payload of key at now, or store.ErrNotFound.
func get(txn *badger.Txn, key []byte, now time.Time) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store get: %w", err)
	}
	var out []byte
	err = item.Value(func(v []byte) error {
		p, live := decode(v, now)
		if !live {
			return store.ErrNotFound
		}
		out = append([]byte(nil), p...)
		return nil
	})
	return out, err
}

// getJSON reads a live record into v.
func getJSON(txn *badger.Txn, key []byte, now time.Time, v any) error {
	b, err := get(txn, key, now)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %q: %w", key, err)
	}
	return nil
}

// exists reports whether key is stored and live at now.
func exists(txn *badger.Txn, key []byte, now time.Time) (bool, error) {
	_, err := get(txn, key, now)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// del removes key.
func del(txn *badger.Txn, key []byte) error {
	if err := txn.Delete(key); err != nil {
		return fmt.Errorf("store delete: %w", err)
	}
	return nil
}

// scan calls fn for each key with prefix, from start (prefix when nil), in
// key order or in reverse; the value is the raw stored value, valid during
// the call. fn returning errStop ends the scan.
func scan(txn *badger.Txn, prefix, start []byte, reverse bool, keysOnly bool, fn func(key, value []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false, Reverse: reverse})
	defer it.Close()
	if start == nil {
		start = prefix
		if reverse {
			start = append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff)
		}
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var err error
		if keysOnly {
			err = fn(item.Key(), nil)
		} else {
			err = item.Value(func(v []byte) error { return fn(item.Key(), v) })
		}
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var errStop = errors.New("stop scan")

// badgerLogger sends Badger's log lines to zap. Badger's Info level is
// chatty (table opens, compactions), so it is demoted to Debug.
type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.s.Errorf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.s.Warnf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.s.Debugf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.s.Debugf(strings.TrimSpace(f), a...) }

// Interface guards
var _ store.Store = (*Store)(nil)

// Bounds of one reclaim transaction: the keys it reads (its conflict set)
// and the deletions it writes.
const (
	reclaimScan   = 10_000
	reclaimDelete = 1_000
)

// Reclaim removes the records that expired from the store's files, and
// reports how many it removed. Badger hides an expired record at once but
// drops its bytes only when a compaction rewrites its table, and
// compactions follow new writes: records keyed by time (conversions,
// deliveries, the webhook log) lie in key ranges no new write reaches, so
// their tables would never be rewritten and the store would only grow.
// Reclaim marks each expired record deleted, then compacts the tree as
// Purge does, which drops both. It runs by itself every ReclaimEvery.
func (s *Store) Reclaim() (int, error) {
	if s.opts.InMemory {
		return 0, nil
	}
	total := 0
	var from []byte
	for {
		if err := s.ctx.Err(); err != nil {
			return total, fmt.Errorf("deleting expired records: the store is closing: %w", err)
		}
		var n int
		var next []byte
		err := s.update(func(txn *badger.Txn) error {
			n, next = 0, nil
			expired, resume := expiredKeys(txn, from)
			for _, k := range expired {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			n, next = len(expired), resume
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("deleting expired records: %w", err)
		}
		total += n
		if next == nil {
			break
		}
		from = next
	}
	if total == 0 {
		return 0, nil
	}
	return total, s.Purge()
}

// expiredKeys returns the keys from from on whose latest version expired,
// up to the bounds of one transaction, and the key to resume at (nil at
// the end). Reading them in txn makes its commit fail if one is written
// again meanwhile.
func expiredKeys(txn *badger.Txn, from []byte) (expired [][]byte, resume []byte) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.AllVersions = true // expired versions are hidden otherwise
	it := txn.NewIterator(opts)
	defer it.Close()
	now := uint64(time.Now().Unix())
	var last []byte
	scanned := 0
	for it.Seek(from); it.Valid(); it.Next() {
		item := it.Item()
		if last != nil && bytes.Equal(item.Key(), last) {
			continue // an older version; the first one seen is the latest
		}
		if scanned == reclaimScan || len(expired) == reclaimDelete {
			return expired, item.KeyCopy(nil)
		}
		scanned++
		last = item.KeyCopy(last)
		// A deletion marker has no expiry: only records that expired.
		if e := item.ExpiresAt(); e != 0 && e <= now {
			expired = append(expired, item.KeyCopy(nil))
		}
	}
	return expired, nil
}
