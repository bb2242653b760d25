// Package module is caddy-postback's Caddy-facing shell: the postback app
// (store, dispatcher, networks, cookie), the http.handlers.postback handler,
// admin routes, the CLI command and metrics. The work itself is done by the
// packages under internal/.
package module

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the postback app: it owns the store, the outbox dispatcher, the
// network definitions, the session cookie and the attribution policy. It
// works with no configuration at all (Caddy creates it empty when a site
// uses the postback directive), but then has no networks to credit.
type App struct {
	// Storage is the directory of the embedded store, or ":memory:" to keep
	// nothing on disk. Default: "postback" under Caddy's data directory.
	Storage string `json:"storage,omitempty"`
	// SyncWrites makes every store commit reach the disk before it returns,
	// to survive power loss. Default: false (commits survive a crash of the
	// process; see also FlushInterval and Delivery.Durable).
	SyncWrites bool `json:"sync_writes,omitempty"`
	// FlushInterval, when set, flushes the store to disk this often, which
	// bounds what a power loss could take to that interval. Default: none:
	// the kernel writes the store's pages back on its own schedule (about
	// 30 s on Linux). A flush holds the store's lock, so writes that need
	// a new memtable wait for it: with 1s, the webhook p99 under 200
	// concurrent deliveries rose from ~15-30 ms to ~25-70 ms here.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// MemTableSize is the store's memtable size in bytes. Default: 2 MiB.
	MemTableSize int64 `json:"mem_table_size,omitempty"`
	// Networks are the click sources and postback destinations, by name.
	Networks map[string]*Network `json:"networks,omitempty"`
	// Cookie configures the first-party session cookie.
	Cookie *Cookie `json:"cookie,omitempty"`
	// Attribution is the policy among competing affiliate clicks:
	// "last_click" or "first_click". Default: last_click.
	Attribution string `json:"attribution,omitempty"`
	// MaxClickIDLength caps accepted click IDs. Default: 255 bytes.
	MaxClickIDLength int `json:"max_click_id_length,omitempty"`
	// MaxTouchpoints caps the clicks kept per session. Default: 20.
	MaxTouchpoints int `json:"max_touchpoints,omitempty"`
	// ConsentCookie, when set, makes capture wait for consent: clicks are
	// captured only when this cookie is present with ConsentValue.
	ConsentCookie string `json:"consent_cookie,omitempty"`
	// ConsentValue is the consent cookie's "yes". Default: "1" when
	// ConsentCookie is set.
	ConsentValue string `json:"consent_value,omitempty"`
	// TruncateIP keeps only the network part of client IPs (/24, /48).
	// Default: false.
	TruncateIP bool `json:"truncate_ip,omitempty"`
	// Delivery configures sending.
	Delivery *Delivery `json:"delivery,omitempty"`
	// DisableMetrics turns off the Prometheus metrics. Default: false.
	DisableMetrics bool `json:"disable_metrics,omitempty"`

	logger     *zap.Logger
	poolKey    string
	rt         *runtime
	recognizer *capture.Recognizer
	signer     *capture.Signer
	sessions   *capture.Sessions
	tracker    *conversion.Tracker
	dests      map[string]outbox.Destination
	// outboxSettings take effect when this config starts.
	outboxSettings outbox.Settings
	cookieLife     time.Duration
	// cookieTail holds the cookie's attributes for HTTP and HTTPS.
	cookieTail [2]string
	metrics    *metrics
	// clickCounters are metrics.clicks per network, by recognizer index.
	clickCounters []prometheus.Counter
}

// Cookie configures the session cookie.
type Cookie struct {
	// Name of the cookie. Default: "_pbsid".
	Name string `json:"name,omitempty"`
	// Domain, when set, shares the cookie with subdomains (".example.com").
	// Default: none (host-only).
	Domain string `json:"domain,omitempty"`
	// Secret signs session IDs: at least 32 bytes, given as text or
	// base64. Default: a random key generated once and kept in the store.
	Secret string `json:"secret,omitempty"`
	// Lifetime of the cookie. Default: the longest attribution window.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
}

// Delivery configures how postbacks are sent.
type Delivery struct {
	// Timeout bounds one attempt. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// RetryBase is the first retry's backoff, doubled on each retry.
	// Default: 30s.
	RetryBase caddy.Duration `json:"retry_base,omitempty"`
	// RetryMax caps one backoff. Default: 1h.
	RetryMax caddy.Duration `json:"retry_max,omitempty"`
	// PauseAfter consecutive transient failures pause a network (its
	// deliveries wait; others flow). Default: 5.
	PauseAfter int `json:"pause_after,omitempty"`
	// PauseBase is the first pause, doubled while failures go on. Default: 5s.
	PauseBase caddy.Duration `json:"pause_base,omitempty"`
	// LogRetention keeps delivered postbacks in the delivery log. Default: 30 days.
	LogRetention caddy.Duration `json:"log_retention,omitempty"`
	// DeadRetention keeps dead letters. Default: 90 days.
	DeadRetention caddy.Duration `json:"dead_retention,omitempty"`
	// Durable flushes the store to disk before a conversion is
	// acknowledged (a webhook answered), so queued postbacks survive power
	// loss or a kernel crash too. Without it they survive any crash of the
	// process (see also FlushInterval). Default: false. Measured cost on a
	// 2-core machine, Stripe webhooks from 200 clients at 500/s: p99 33-52
	// ms with it, 22-24 ms without.
	Durable *bool `json:"durable,omitempty"`
}

// DefaultCookieName is the session cookie's name.
const DefaultCookieName = "_pbsid"

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "postback", New: func() caddy.Module { return new(App) }}
}

// Provision opens (or joins) the store and builds the networks.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if a.Storage == "" {
		a.Storage = filepath.Join(caddy.AppDataDir(), "postback")
	}
	if a.Cookie == nil {
		a.Cookie = new(Cookie)
	}
	if a.Cookie.Name == "" {
		a.Cookie.Name = DefaultCookieName
	}
	if a.Delivery == nil {
		a.Delivery = new(Delivery)
	}
	if a.Attribution == "" {
		a.Attribution = string(attribution.LastClick)
	}
	if a.Attribution != string(attribution.LastClick) && a.Attribution != string(attribution.FirstClick) {
		return fmt.Errorf("attribution %q: want last_click or first_click", a.Attribution)
	}
	if a.MaxClickIDLength == 0 {
		a.MaxClickIDLength = capture.DefaultMaxClickIDLength
	}
	if a.MaxTouchpoints == 0 {
		a.MaxTouchpoints = capture.DefaultMaxTouchpoints
	}
	if a.ConsentCookie != "" && a.ConsentValue == "" {
		a.ConsentValue = "1"
	}
	repl := envReplacer()

	// Networks.
	var nets []capture.Network
	a.dests = map[string]outbox.Destination{}
	tracked := map[string]conversion.Network{}
	longest := time.Duration(0)
	for _, name := range sortedKeys(a.Networks) {
		n := a.Networks[name]
		cn, dest, err := n.provision(name, repl)
		if err != nil {
			return err
		}
		nets = append(nets, cn)
		a.dests[name] = outbox.Destination{Classify: dest.Classify, Concurrency: n.Concurrency}
		tracked[name] = conversion.Network{
			Attribution: attribution.Network{Role: n.Role, Window: time.Duration(n.Window)},
			Destination: dest, MaxAge: time.Duration(n.MaxAge),
		}
		longest = max(longest, time.Duration(n.Window))
	}
	rec, err := capture.NewRecognizer(nets, a.MaxClickIDLength)
	if err != nil {
		return err
	}
	a.recognizer = rec
	if longest == 0 {
		longest = DefaultWindow
	}
	a.cookieLife = time.Duration(a.Cookie.Lifetime)
	if a.cookieLife <= 0 {
		a.cookieLife = longest
	}
	if err := a.provisionCookie(); err != nil {
		return err
	}

	// Store and dispatcher, shared across reloads.
	key, err := poolKey(a.Storage)
	if err != nil {
		return err
	}
	so := store.Options{Dir: key, InMemory: key == memoryStorage, SyncWrites: a.SyncWrites, FlushInterval: time.Duration(a.FlushInterval),
		MemTableSize: a.MemTableSize, Logger: a.logger.Named("badger")}
	if !so.InMemory {
		if err := os.MkdirAll(key, 0o700); err != nil {
			return fmt.Errorf("creating storage directory: %w", err)
		}
	}
	if !a.DisableMetrics {
		a.metrics = registerMetrics(ctx.GetMetricsRegistry())
		for _, n := range rec.Networks() {
			a.clickCounters = append(a.clickCounters, a.metrics.clicks.WithLabelValues(n.Name))
		}
	}
	rt, loaded, err := openRuntime(key, so, a.dispatcherOptions(), a.logger)
	if err != nil {
		return err
	}
	a.poolKey, a.rt = key, rt
	if loaded {
		a.logger.Debug("reusing open store", zap.String("storage", key))
	}
	a.outboxSettings = outbox.Settings{
		Durable:       a.Delivery.Durable != nil && *a.Delivery.Durable,
		LogRetention:  time.Duration(a.Delivery.LogRetention),
		DeadRetention: time.Duration(a.Delivery.DeadRetention),
	}

	// Session cookie key.
	secret, err := a.cookieSecret()
	if err != nil {
		return err
	}
	if a.signer, err = capture.NewSigner(secret); err != nil {
		return fmt.Errorf("cookie secret: %w", err)
	}
	a.sessions = &capture.Sessions{Store: rt.sessions, Earlier: rt.store, MaxTouchpoints: a.MaxTouchpoints, TTL: longest}
	a.tracker = &conversion.Tracker{Outbox: rt.outbox, Sessions: a.sessions, Networks: tracked, Policy: attribution.Policy(a.Attribution)}
	return nil
}

func (a *App) dispatcherOptions() outbox.Options {
	d := a.Delivery
	o := outbox.Options{
		Timeout:    time.Duration(d.Timeout),
		Retry:      outbox.RetryPolicy{Base: time.Duration(d.RetryBase), Max: time.Duration(d.RetryMax)},
		PauseAfter: d.PauseAfter,
		PauseBase:  time.Duration(d.PauseBase),
		Logger:     a.logger.Named("outbox"),
	}
	if m := a.metrics; m != nil {
		o.OnOutcome = func(network, outcome string) { m.deliveries.WithLabelValues(network, outcome).Inc() }
		o.OnPause = func(network string, paused bool) {
			v := 0.0
			if paused {
				v = 1
			}
			m.paused.WithLabelValues(network).Set(v)
		}
	}
	return o
}

// cookieSecret returns the configured secret, or the one kept in the store,
// generating it on first use.
func (a *App) cookieSecret() ([]byte, error) {
	if s := envReplacer().ReplaceKnown(a.Cookie.Secret, ""); s != "" {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) >= 32 {
			return b, nil
		}
		return []byte(s), nil
	}
	key := store.Key(store.PrefixMeta, "cookie_key")
	var secret []byte
	err := a.rt.store.Update(func(txn store.Txn) error {
		v, err := txn.Get(key)
		if err == nil {
			secret = v
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		secret = capture.NewKey()
		return txn.Set(key, secret, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("loading the session signing key: %w", err)
	}
	return secret, nil
}

// active is the most recently started app, for the admin routes.
var active atomic.Pointer[App]

// Start starts the dispatcher (once per store) and gives it this config's
// destinations.
func (a *App) Start() error {
	a.rt.outbox.Configure(a.outboxSettings)
	a.rt.dispatcher.SetDestinations(a.dests)
	a.rt.dispatcher.Start()
	active.Store(a)
	return nil
}

// Stop leaves the dispatcher running: it belongs to the store, which the
// next config (if any) shares; the last config's Cleanup stops it.
func (a *App) Stop() error {
	active.CompareAndSwap(a, nil)
	return nil
}

// Cleanup releases this config's hold on the store.
func (a *App) Cleanup() error {
	if a.poolKey == "" {
		return nil
	}
	_, err := runtimes.Delete(a.poolKey)
	a.poolKey = ""
	return err
}

// envReplacer replaces only {env.*} placeholders: other placeholders in
// templates are either our tokens or mistakes that must be reported.
func envReplacer() *caddy.Replacer {
	r := caddy.NewEmptyReplacer()
	r.Map(func(key string) (any, bool) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			return os.LookupEnv(name)
		}
		return nil, false
	})
	return r
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
