package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/stats"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// runtimes holds the open stores, by their engine's pool key. Caddy
// provisions and starts a new config before it stops the old one, and an
// embedded store allows one open per directory, so the store and its
// dispatcher are shared by every config that names the storage, and closed
// with the last one.
var runtimes = caddy.NewUsagePool()

// runtime is what lives across reloads: the store, watched for health, and
// the one dispatcher that sends from it.
type runtime struct {
	key        string
	store      *store.Health
	dispatcher *outbox.Dispatcher
	opts       outbox.Options
	// engineOptions are the storage engine's options as the config that
	// opened the store gave them (its JSON), for the warning when a
	// reload changes them.
	engineOptions map[string]any
	// tally counts for the dashboard's overview; stopTally ends its
	// flushes (after a last one).
	tally     *stats.Tally
	stopTally context.CancelFunc
	tallyDone chan struct{}
}

// tallyEvery is how often the counts reach the storage.
const tallyEvery = 5 * time.Second

// Destruct stops the dispatcher and the tally, then closes the store.
func (r *runtime) Destruct() error {
	r.dispatcher.Stop()
	r.stopTally()
	<-r.tallyDone
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("closing postback storage: %w", err)
	}
	return nil
}

// openRuntime returns the shared runtime of a storage engine, opening it on
// first use. The dispatcher's timing options are fixed by the config that
// opened the store; later configs give it their networks when they start.
func openRuntime(engine StorageEngine, do outbox.Options, logger *zap.Logger) (*runtime, bool, error) {
	key := engine.PoolKey()
	val, loaded, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := engine.OpenStore(logger.Named("storage"))
		if err != nil {
			return nil, err
		}
		h := store.NewHealth(st, func(err error) { storageChanged(logger, engine, err) })
		rt := &runtime{key: key, store: h, opts: do, engineOptions: optionsOf(engine), tally: stats.New(h, now), tallyDone: make(chan struct{})}
		do.OnAttempt = rt.observeAttempt
		do.OnPause = observePause
		rt.dispatcher = outbox.New(h, do)
		var ctx context.Context
		ctx, rt.stopTally = context.WithCancel(context.Background())
		go func() {
			defer close(rt.tallyDone)
			rt.tally.Run(ctx, tallyEvery)
		}()
		return rt, nil
	})
	if err != nil {
		return nil, false, err
	}
	rt := val.(*runtime)
	if !loaded {
		return rt, false, nil
	}
	if changed := changedOptions(rt.engineOptions, optionsOf(engine)); len(changed) > 0 {
		logger.Warn("storage options changed; the open storage keeps its options until Caddy restarts",
			zap.String("storage", engine.Describe()), zap.Strings("options", changed))
	}
	if changed := changedOptions(timingOptions(rt.opts), timingOptions(do)); len(changed) > 0 {
		logger.Warn("delivery timing options changed; they take effect after a restart (networks, templates and concurrency change now)",
			zap.String("storage", engine.Describe()), zap.Strings("options", changed))
	}
	return rt, true, nil
}

// optionsOf returns a storage engine's options as its JSON config has
// them.
func optionsOf(engine StorageEngine) map[string]any {
	var m map[string]any
	if b, err := json.Marshal(engine); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// timingOptions are the dispatcher's options that apply only when the
// storage is opened, by their Caddyfile names.
func timingOptions(o outbox.Options) map[string]any {
	return map[string]any{"timeout": o.Timeout, "lease_margin": o.LeaseMargin, "retry_base": o.Retry.Base,
		"retry_max": o.Retry.Max, "pause_after": o.PauseAfter, "pause_base": o.PauseBase}
}

// changedOptions lists, sorted, the names whose values differ between two
// sets of options (an option given in one and left to its default in the
// other included). It names options, never their values, which may hold
// secrets.
func changedOptions(before, after map[string]any) []string {
	var out []string
	for k := range maps.Keys(before) {
		if !reflect.DeepEqual(before[k], after[k]) {
			out = append(out, k)
		}
	}
	for k := range maps.Keys(after) {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// storageChanged logs and counts a change of the storage's health.
func storageChanged(logger *zap.Logger, engine StorageEngine, err error) {
	up := 1.0
	switch {
	case err == nil:
		logger.Warn("postback storage is available again; tracking resumes", zap.String("storage", engine.Describe()))
	case errors.Is(err, store.ErrFull):
		up = 0
		logger.Error("postback storage refuses writes: capture is skipped and webhooks answer 503 until there is room; pages are served",
			zap.String("storage", engine.Describe()), zap.Error(err))
	default:
		up = 0
		logger.Error("postback storage is unavailable: capture is skipped, webhooks answer 503 and deliveries wait until it returns; pages are served",
			zap.String("storage", engine.Describe()), zap.Error(err))
	}
	sharedMetrics().storageUp.Set(up)
}

// liveApps are the started postback apps that have not stopped, oldest
// first. The newest is the one the admin routes serve, and the one whose
// networks each dispatcher sends with: when a new config fails to start
// (another of its apps failed) and is stopped again, the config that keeps
// running takes over again, untouched.
var liveApps struct {
	sync.Mutex
	apps []*App
}

// activate makes a the newest live app and gives its runtime's dispatcher
// a's networks.
func activate(a *App) {
	liveApps.Lock()
	defer liveApps.Unlock()
	liveApps.apps = append(slices.DeleteFunc(liveApps.apps, func(o *App) bool { return o == a }), a)
	a.rt.dispatcher.Configure(a.dispatcherConfig)
	a.rt.dispatcher.Start()
	inspection.SetLimit(a.InspectionBudget)
}

// deactivate removes a; if it was the newest app of its runtime, the
// runtime's dispatcher goes back to the newest one left.
func deactivate(a *App) {
	liveApps.Lock()
	defer liveApps.Unlock()
	liveApps.apps = slices.DeleteFunc(liveApps.apps, func(o *App) bool { return o == a })
	for i := len(liveApps.apps) - 1; i >= 0; i-- {
		if o := liveApps.apps[i]; o.rt == a.rt {
			o.rt.dispatcher.Configure(o.dispatcherConfig)
			break
		}
	}
	if n := len(liveApps.apps); n > 0 {
		inspection.SetLimit(liveApps.apps[n-1].InspectionBudget)
	}
}

// currentApp returns the newest live app, or nil.
func currentApp() *App {
	liveApps.Lock()
	defer liveApps.Unlock()
	if n := len(liveApps.apps); n > 0 {
		return liveApps.apps[n-1]
	}
	return nil
}

// observeAttempt counts a delivery attempt.
func (r *runtime) observeAttempt(network string, state record.State, status int, latency time.Duration) {
	r.tally.Add(store.StatAttempts, network, "", "", string(state), 1, latency.Microseconds())
	m := sharedMetrics()
	m.deliveries.WithLabelValues(network, string(state)).Inc()
	m.attempts.WithLabelValues(network, string(state), statusClass(status)).Inc()
	m.latency.WithLabelValues(network).Observe(latency.Seconds())
	if state == record.StateRetrying {
		m.retries.WithLabelValues(network).Inc()
	}
}

func observePause(network string, paused bool) {
	v := 0.0
	if paused {
		v = 1
	}
	sharedMetrics().paused.WithLabelValues(network).Set(v)
}
