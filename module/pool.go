package module

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// runtimes holds the open stores, keyed by their absolute directory. Caddy
// provisions and starts a new config before it stops the old one, and Badger
// allows one open per directory, so the store and its dispatcher are shared
// by every config that names the directory and closed with the last one.
var runtimes = caddy.NewUsagePool()

// memoryStorage is the storage value for an in-memory store.
const memoryStorage = ":memory:"

// runtime is what lives across reloads: the store, the outbox and the one
// dispatcher that sends from it.
type runtime struct {
	store      *store.Badger
	outbox     *outbox.Outbox
	dispatcher *outbox.Dispatcher
	opts       store.Options
}

// Destruct stops the dispatcher, then closes the store.
func (r *runtime) Destruct() error {
	r.dispatcher.Stop()
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("closing postback store: %w", err)
	}
	return nil
}

// poolKey returns the pool key of a storage setting.
func poolKey(storage string) (string, error) {
	if storage == memoryStorage {
		return memoryStorage, nil
	}
	abs, err := filepath.Abs(storage)
	if err != nil {
		return "", fmt.Errorf("resolving storage directory: %w", err)
	}
	return filepath.Clean(abs), nil
}

// openRuntime returns the shared runtime for a storage directory, opening it
// on first use. The dispatcher options are fixed by whichever config opened
// the store first; later configs update its destinations.
func openRuntime(key string, so store.Options, do outbox.Options, logger *zap.Logger) (*runtime, bool, error) {
	val, loaded, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := store.Open(so)
		if err != nil {
			return nil, err
		}
		ob := outbox.New(s)
		return &runtime{store: s, outbox: ob, dispatcher: outbox.NewDispatcher(ob, do), opts: so}, nil
	})
	if err != nil {
		return nil, false, err
	}
	rt := val.(*runtime)
	if loaded && (rt.opts.SyncWrites != so.SyncWrites || rt.opts.MemTableSize != so.MemTableSize) {
		logger.Warn("storage options changed; they take effect after a restart", zap.String("storage", key))
	}
	return rt, loaded, nil
}
