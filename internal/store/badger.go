package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

// Options configures the Badger store. Zero fields take the small-footprint
// defaults below: 2 MiB memtables and 256 KiB tables, no compression, no
// block cache. Badger keeps up to eight table-building buffers in a pool,
// each twice the table size and grown to hold a flushed memtable, and they
// dominated the heap of a draining 100k-delivery backlog: at Badger's
// defaults the process peaked at 480 MB RSS, with 4 MiB memtables and 1 MiB
// tables at 240-260 MB, with these at 183-203 MB, and 164-184 MB once the
// 3 MiB index buffer Badger took for every table built was capped
// (third_party/flatbuffers).
type Options struct {
	// Dir is the data directory; empty with InMemory.
	Dir string
	// InMemory keeps everything in memory (tests, demos): nothing persists.
	InMemory bool
	// SyncWrites makes every commit msync, to survive power loss. Without
	// it writes still survive a process crash (Badger writes through mmap).
	SyncWrites bool
	// MemTableSize in bytes; default 2 MiB. The largest transaction is 15%
	// of it. Small memtables keep the buffers Badger pools for building
	// tables small: with 16 MiB a 100k-delivery backlog drained at 450 MB RSS.
	MemTableSize int64
	// NumMemtables; default 2.
	NumMemtables int
	// ValueLogFileSize in bytes; default 64 MiB.
	ValueLogFileSize int64
	// ValueThreshold is the value size from which Badger writes a value to
	// the value log and keeps only a pointer to it in the LSM tree; default
	// 64 KiB, so every record stays in the tree. A store of records that
	// are written once and seldom rewritten (sessions) sets it low:
	// flushes and compactions then move keys and pointers instead of whole
	// records. Records that are rewritten (deliveries) are better kept in
	// the tree, as every version written to the value log stays there, and
	// mapped, until the value-log GC.
	ValueThreshold int64
	// BlockCacheSize in bytes; default 0: tables are not compressed, so a
	// cache would only duplicate the mapped files. (Snappy compression
	// with a cache was measured: its table-building buffers more than
	// doubled the RSS of a draining backlog.)
	BlockCacheSize int64
	// GCInterval between value-log GC runs; default 10 minutes.
	GCInterval time.Duration
	// FlushInterval, when positive, flushes committed writes to disk this
	// often, bounding what a power loss or kernel crash could take (a crash
	// of the process loses nothing). Default 0: the kernel's own writeback.
	FlushInterval time.Duration
	// Logger receives Badger's messages (Info is demoted to Debug).
	Logger *zap.Logger
}

// Badger is a Store on Badger v4. It owns the value-log GC goroutine.
type Badger struct {
	db     *badger.DB
	logger *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	syncs  *Group[func() error]
	dirty  atomic.Bool // writes committed since the last flush
}

// Open opens (or creates) a Badger store.
func Open(o Options) (*Badger, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 2 << 20
	}
	if o.NumMemtables == 0 {
		o.NumMemtables = 2
	}
	if o.ValueLogFileSize == 0 {
		o.ValueLogFileSize = 64 << 20
	}
	if o.ValueThreshold == 0 {
		o.ValueThreshold = 64 << 10
	}
	if o.GCInterval == 0 {
		o.GCInterval = 10 * time.Minute
	}
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithLogger(badgerLogger{o.Logger.Sugar()}).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBaseTableSize(256 << 10).
		WithValueLogFileSize(o.ValueLogFileSize).
		// Badger requires the threshold under 15% of a memtable.
		WithValueThreshold(o.ValueThreshold).
		WithBlockCacheSize(o.BlockCacheSize).
		WithCompression(options.None).
		WithIndexCacheSize(0).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithSyncWrites(o.SyncWrites).
		WithMetricsEnabled(false)
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("opening store %s: %w: this is usually another running Caddy; use 'caddy reload' to change its config (%v)", o.Dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("opening store %s: %w", o.Dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Badger{db: db, logger: o.Logger, cancel: cancel, done: make(chan struct{}), syncs: newSyncGroup()}
	go s.gcLoop(ctx, o.GCInterval, o.FlushInterval, o.InMemory)
	return s, nil
}

// gcLoop flushes committed writes to disk every flush interval (if set),
// and reclaims value-log space. Our values are small and mostly live in the LSM
// tree, so GC rarely rewrites anything, but it bounds disk use if large
// values appear.
func (s *Badger) gcLoop(ctx context.Context, every, flushEvery time.Duration, inMemory bool) {
	defer close(s.done)
	if inMemory {
		<-ctx.Done()
		return
	}
	gc := time.NewTicker(every)
	defer gc.Stop()
	var flushC <-chan time.Time
	if flushEvery > 0 {
		flush := time.NewTicker(flushEvery)
		defer flush.Stop()
		flushC = flush.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-flushC:
			if s.dirty.Swap(false) {
				if err := s.Sync(); err != nil {
					s.logger.Warn("flushing the store to disk", zap.Error(err))
				}
			}
		case <-gc.C:
			for range 10 {
				if err := s.db.RunValueLogGC(0.5); err != nil {
					if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
						s.logger.Warn("badger value log GC", zap.Error(err))
					}
					break
				}
			}
		}
	}
}

// Update implements Store. Conflicts are retried up to five times with a
// short jittered pause.
func (s *Badger) Update(fn func(Txn) error) error {
	var err error
	for attempt := range 5 {
		err = s.db.Update(func(t *badger.Txn) error { return fn(badgerTxn{t}) })
		if err == nil {
			s.dirty.Store(true)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(200*(attempt+1))) * time.Microsecond)
	}
	return fmt.Errorf("store update: %w", err)
}

// View implements Store.
func (s *Badger) View(fn func(Txn) error) error {
	return s.db.View(func(t *badger.Txn) error { return fn(badgerTxn{t}) })
}

// Sync implements Store. Concurrent calls share flushes.
func (s *Badger) Sync() error {
	if s.db.Opts().InMemory {
		return nil
	}
	return s.syncs.Do(s.db.Sync)
}

// Close stops the GC loop, then closes the database. Later calls do nothing.
func (s *Badger) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		<-s.done
		err = s.db.Close()
	})
	return err
}

type badgerTxn struct{ t *badger.Txn }

func (b badgerTxn) Get(key []byte) ([]byte, error) {
	item, err := b.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store get: %w", err)
	}
	var out []byte
	err = item.Value(func(v []byte) error {
		payload, live, err := decodeValue(v, now())
		if err != nil {
			return err
		}
		if !live {
			return ErrNotFound
		}
		out = append([]byte(nil), payload...)
		return nil
	})
	return out, err
}

func (b badgerTxn) Set(key, value []byte, ttl time.Duration) error {
	e := badger.NewEntry(key, encodeValue(value, ttl))
	if ttl > 0 {
		e = e.WithTTL(ttl)
	}
	if err := b.t.SetEntry(e); err != nil {
		return fmt.Errorf("store set: %w", err)
	}
	return nil
}

func (b badgerTxn) Delete(key []byte) error {
	if err := b.t.Delete(key); err != nil {
		return fmt.Errorf("store delete: %w", err)
	}
	return nil
}

func (b badgerTxn) Scan(prefix, from []byte, fn func(key, value []byte) error) error {
	start := prefix
	if len(from) > 0 {
		start = from
	}
	return b.scan(prefix, start, false, fn)
}

func (b badgerTxn) ScanReverse(prefix []byte, fn func(key, value []byte) error) error {
	// A reverse iterator seeks to the greatest key <= start, so start past
	// every key with the prefix.
	start := append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff)
	return b.scan(prefix, start, true, fn)
}

func (b badgerTxn) scan(prefix, start []byte, reverse bool, fn func(key, value []byte) error) error {
	it := b.t.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false, Reverse: reverse})
	defer it.Close()
	t := now()
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		err := item.Value(func(v []byte) error {
			payload, live, err := decodeValue(v, t)
			if err != nil || !live {
				return err
			}
			return fn(item.Key(), payload)
		})
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// badgerLogger sends Badger's log lines to zap. Badger's Info level is
// chatty (table opens, compactions), so it is demoted to Debug.
type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.s.Errorf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.s.Warnf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.s.Debugf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.s.Debugf(strings.TrimSpace(f), a...) }

// Interface guards
var (
	_ Store = (*Badger)(nil)
	_ Txn   = badgerTxn{}
)
