package module

import (
	"errors"
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

// sessionsDir is the directory of the sessions store, inside the storage
// directory.
const sessionsDir = "sessions"

// sessionsValueThreshold sends every session but the smallest to the
// sessions store's value log (see store.Options.ValueThreshold).
const sessionsValueThreshold = 64

// runtime is what lives across reloads: the stores, the outbox and the one
// dispatcher that sends from it.
//
// Sessions have a store of their own. Every landing click writes one, and
// they are rarely rewritten, so that store keeps them in its value log and
// its compactions move only keys: the main store, whose deliveries are
// rewritten as they are sent, keeps its records in the LSM tree. One store
// for both had to choose, and either choice cost one of them (measured:
// clicks per second, or the memory of a draining backlog).
type runtime struct {
	store      *store.Badger
	sessions   *store.Badger
	outbox     *outbox.Outbox
	dispatcher *outbox.Dispatcher
	opts       store.Options
}

// Destruct stops the dispatcher, then closes the stores.
func (r *runtime) Destruct() error {
	r.dispatcher.Stop()
	var errs []error
	if err := r.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing postback store: %w", err))
	}
	if err := r.sessions.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing postback sessions store: %w", err))
	}
	return errors.Join(errs...)
}

// sessionsOptions are the options of the sessions store that goes with a
// main store opened with so.
func sessionsOptions(so store.Options) store.Options {
	sso := so
	if so.Logger != nil {
		sso.Logger = so.Logger.Named("sessions")
	}
	// In memory there is no value log (Badger refuses values above the
	// threshold there), so only a store on disk lowers it.
	if !so.InMemory {
		sso.Dir = filepath.Join(so.Dir, sessionsDir)
		sso.ValueThreshold = sessionsValueThreshold
	}
	return sso
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
		ss, err := store.Open(sessionsOptions(so))
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		ob := outbox.New(s)
		return &runtime{store: s, sessions: ss, outbox: ob, dispatcher: outbox.NewDispatcher(ob, do), opts: so}, nil
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
