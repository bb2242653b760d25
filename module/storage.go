package module

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

func init() {
	caddy.RegisterModule(Badger{})
}

// StorageEngine is a storage engine of the postback app: a guest module in
// the postback.storage namespace.
type StorageEngine interface {
	// PoolKey names the storage the engine opens: configs with the same key
	// share one open store (and one dispatcher) across reloads.
	PoolKey() string
	// OpenStore opens the store. It fails only when the storage can never
	// work as configured; storage that is down now is opened degraded and
	// comes back by itself.
	OpenStore(logger *zap.Logger) (store.Store, error)
	// Describe says where the data lives, for the startup summary; never a
	// secret.
	Describe() string
}

// Badger is the embedded storage engine (postback.storage.badger), the
// default: one Badger database in a directory of the Caddy host.
type Badger struct {
	// Dir is the data directory, or ":memory:" to keep nothing on disk.
	// Default: "postback" under Caddy's data directory.
	Dir string `json:"dir,omitempty"`
	// MinFree is the free space, in bytes, under which the store refuses
	// writes (tracking pauses, pages are served) so that Badger never runs
	// out of room in the middle of a write. Default: 256 MiB.
	MinFree int64 `json:"min_free,omitempty"`
	// SyncWrites makes every commit reach the disk before it returns, to
	// survive power loss. Default: false (commits survive a crash of the
	// process).
	SyncWrites bool `json:"sync_writes,omitempty"`
	// MemTableSize is Badger's memtable size in bytes. Default: 4 MiB.
	MemTableSize int64 `json:"mem_table_size,omitempty"`
}

// memoryStorage is the Dir of an in-memory store.
const memoryStorage = ":memory:"

// CaddyModule returns the Caddy module information.
func (Badger) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "postback.storage.badger", New: func() caddy.Module { return new(Badger) }}
}

// Provision fills the defaults.
func (b *Badger) Provision(caddy.Context) error {
	if b.Dir == "" {
		b.Dir = filepath.Join(caddy.AppDataDir(), "postback")
	}
	if b.Dir != memoryStorage {
		abs, err := filepath.Abs(b.Dir)
		if err != nil {
			return fmt.Errorf("resolving storage directory: %w", err)
		}
		b.Dir = filepath.Clean(abs)
	}
	if b.MinFree < 0 || b.MemTableSize < 0 {
		return fmt.Errorf("storage badger: negative size")
	}
	return nil
}

// PoolKey implements StorageEngine.
func (b *Badger) PoolKey() string { return "badger:" + b.Dir }

// Describe implements StorageEngine.
func (b *Badger) Describe() string { return "badger " + b.Dir }

// OpenStore implements StorageEngine.
func (b *Badger) OpenStore(logger *zap.Logger) (store.Store, error) {
	o := badgerstore.Options{Dir: b.Dir, InMemory: b.Dir == memoryStorage, MinFree: b.MinFree, SyncWrites: b.SyncWrites,
		MemTableSize: b.MemTableSize, RetryEvery: 2 * time.Second, Logger: logger}
	s, err := badgerstore.Open(o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Interface guards
var (
	_ StorageEngine     = (*Badger)(nil)
	_ caddy.Provisioner = (*Badger)(nil)
)
