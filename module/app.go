// Package module is caddy-postback's Caddy-facing shell: the postback app
// (storage, dispatcher, networks, cookie), the http.handlers.postback
// handler, the storage engine modules, admin routes, the CLI command and
// metrics. It translates configuration and requests into calls on the
// packages under internal/, which do the work.
package module

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/consent"
	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the postback app: it owns the storage, the outbox dispatcher, the
// network definitions, the session cookie and the attribution policy. It
// works with no configuration at all (Caddy creates it empty when a site
// uses the postback directive), but then has no networks to credit.
type App struct {
	// StorageRaw is the storage engine: {"engine": "badger", "dir": …} (the
	// embedded default) or {"engine": "postgres", "dsn": …} for several
	// Caddy nodes sharing one database. Default: badger in "postback" under
	// Caddy's data directory.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=postback.storage inline_key=engine"`
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
	// Consent says where visitors' consent is read from (the TCF string,
	// CMP cookies), what every capture needs, and how Google's consent
	// signals are derived; networks add their own requirements. Default:
	// none (clicks are captured without asking).
	Consent *Consent `json:"consent,omitempty"`
	// TruncateIP keeps only the network part of client IPs (/24, /48).
	// Default: false.
	TruncateIP bool `json:"truncate_ip,omitempty"`
	// SessionDailyLimit bounds the orders confirmation pages can record for
	// one session in 24 hours; further ones are recorded as held and sent
	// nowhere. Webhooks are not limited. Default: 5; -1 for no limit.
	SessionDailyLimit int `json:"session_daily_limit,omitempty"`
	// InspectionBudget bounds the bytes copied from confirmation pages for
	// inspection, across all responses in flight; a page that finds it
	// spent passes through uninspected. Default: 32 MiB.
	InspectionBudget int64 `json:"inspection_budget,omitempty"`
	// StorageTimeout bounds each storage call a visitor's request waits on
	// (capture, reading a session). Default: 1s.
	StorageTimeout caddy.Duration `json:"storage_timeout,omitempty"`
	// Delivery configures sending.
	Delivery *Delivery `json:"delivery,omitempty"`
	// DisableMetrics turns off the Prometheus metrics. Default: false.
	DisableMetrics bool `json:"disable_metrics,omitempty"`

	logger     *zap.Logger
	engine     StorageEngine
	rt         *runtime
	recognizer *capture.Recognizer
	sessions   *capture.Sessions
	// consent is the consent policy; nil when consent is not configured.
	consent *consent.Policy
	// netConsent is each network's consent requirement, by recognizer
	// index.
	netConsent [][]string
	// seenClicks remembers the cookie clicks sessions hold.
	seenClicks *capture.SeenClicks
	tracker    *conversion.Tracker
	masker     *postback.Masker
	// dispatcherConfig is what this config gives the dispatcher when it
	// becomes the newest running config.
	dispatcherConfig outbox.Config
	cookieLife       time.Duration
	// cookieTail holds the cookie's attributes for HTTP and HTTPS.
	cookieTail [2]string
	metrics    *metrics
	// clickCounters are metrics.clicks per network, by recognizer index.
	clickCounters []prometheus.Counter
	// refusedCounters are metrics.consentRefused per network, by
	// recognizer index.
	refusedCounters []prometheus.Counter
	// signer signs session cookies; it is loaded from the storage on
	// first use when no secret is configured (see loadSigner).
	signer *signerState
	// sites are the site handlers of this config, for the startup summary.
	sites *siteList
}

type signerState struct {
	atomic.Pointer[capture.Signer]
	mu    sync.Mutex
	tried time.Time
}

type siteList struct {
	sync.Mutex
	list []string
}

// Cookie configures the session cookie.
type Cookie struct {
	// Name of the cookie. Default: "_pbsid".
	Name string `json:"name,omitempty"`
	// Domain, when set, shares the cookie with subdomains (".example.com").
	// Default: none (host-only).
	Domain string `json:"domain,omitempty"`
	// Secret signs session IDs: at least 32 bytes, given as text or
	// base64. Default: a random key generated once and kept in the
	// storage, shared by every node of a cluster.
	Secret string `json:"secret,omitempty"`
	// Lifetime of the cookie. Default: the longest attribution window.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
}

// Delivery configures how postbacks are sent.
type Delivery struct {
	// Timeout bounds one attempt. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// LeaseMargin is how long a claimed delivery's lease outlives its
	// attempt's timeout; a node that dies holds its deliveries this much
	// longer before another node sends them. Default: 30s.
	LeaseMargin caddy.Duration `json:"lease_margin,omitempty"`
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
	// ConversionRetention keeps conversion records. Default: 90 days.
	ConversionRetention caddy.Duration `json:"conversion_retention,omitempty"`
}

// Defaults.
const (
	// DefaultCookieName is the session cookie's name.
	DefaultCookieName = "_pbsid"
	// DefaultInspectionBudget bounds the bytes copied from confirmation
	// pages across all responses in flight.
	DefaultInspectionBudget = 32 << 20
	// DefaultStorageTimeout bounds a storage call a request waits on.
	DefaultStorageTimeout = time.Second
)

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "postback", New: func() caddy.Module { return new(App) }}
}

// Provision builds the networks and joins (or opens) the storage.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.signer, a.sites = new(signerState), new(siteList)
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
	if a.InspectionBudget == 0 {
		a.InspectionBudget = DefaultInspectionBudget
	}
	if a.StorageTimeout == 0 {
		a.StorageTimeout = caddy.Duration(DefaultStorageTimeout)
	}
	if err := a.provisionEngine(ctx); err != nil {
		return err
	}
	env := &envExpander{}
	if err := a.provisionConsent(); err != nil {
		return err
	}
	a.seenClicks = capture.NewSeenClicks(0)

	// Networks.
	var nets []capture.Network
	dests := map[string]outbox.Destination{}
	tracked := map[string]conversion.Network{}
	var secrets []string
	longest := time.Duration(0)
	for _, name := range sortedKeys(a.Networks) {
		n := a.Networks[name]
		cn, dest, sec, err := n.provision(name, env)
		if err != nil {
			return err
		}
		if err := a.checkNetworkConsent(name, n.Consent); err != nil {
			return err
		}
		secrets = append(secrets, sec...)
		nets = append(nets, cn)
		a.netConsent = append(a.netConsent, n.Consent)
		dests[name] = outbox.Destination{Destination: dest, Concurrency: n.Concurrency}
		tracked[name] = conversion.Network{
			Attribution: attribution.Network{Role: n.Role, Window: time.Duration(n.Window)},
			Destination: dest, MaxAge: time.Duration(n.MaxAge), RebillFor: time.Duration(n.RebillPeriod),
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
	secret, err := env.expand("cookie secret", a.Cookie.Secret)
	if err != nil {
		return err
	}
	if secret != "" {
		key := []byte(secret)
		if b, err := base64.StdEncoding.DecodeString(secret); err == nil && len(b) >= 32 {
			key = b
		}
		s, err := capture.NewSigner(key)
		if err != nil {
			return fmt.Errorf("cookie secret: %w", err)
		}
		a.signer.Store(s)
		secrets = append(secrets, secret)
	}
	if es, ok := a.engine.(interface{ Secrets() []string }); ok {
		secrets = append(secrets, es.Secrets()...)
	}
	a.masker = postback.NewMasker(append(secrets, env.secrets...)...)

	if !a.DisableMetrics {
		a.metrics = registerMetrics(ctx.GetMetricsRegistry())
	} else {
		a.metrics = sharedMetrics()
	}
	for _, n := range rec.Networks() {
		a.clickCounters = append(a.clickCounters, a.metrics.clicks.WithLabelValues(n.Name))
		a.refusedCounters = append(a.refusedCounters, a.metrics.consentRefused.WithLabelValues(n.Name))
		a.metrics.initNetwork(n.Name)
	}

	// Storage and dispatcher, shared across reloads.
	rt, loaded, err := openRuntime(a.engine, a.dispatcherOptions(), a.logger)
	if err != nil {
		return err
	}
	a.rt = rt
	if loaded {
		a.logger.Debug("reusing open storage", zap.String("storage", a.engine.Describe()))
	}
	a.dispatcherConfig = outbox.Config{Destinations: dests, Masker: a.masker,
		KeepDelivered: time.Duration(a.Delivery.LogRetention), KeepDead: time.Duration(a.Delivery.DeadRetention)}
	a.sessions = &capture.Sessions{Store: rt.store, MaxTouchpoints: a.MaxTouchpoints}
	a.tracker = &conversion.Tracker{Store: rt.store, Networks: tracked, Policy: attribution.Policy(a.Attribution),
		Retention:         conversion.Retention{Conversions: time.Duration(a.Delivery.ConversionRetention)},
		SessionDailyLimit: a.SessionDailyLimit, Now: now,
		Queued: func([]string) { rt.dispatcher.Wake() },
	}
	if a.signer.Load() == nil {
		a.loadSigner(ctx)
	}
	return nil
}

// provisionEngine loads the configured storage engine, or the default.
func (a *App) provisionEngine(ctx caddy.Context) error {
	if a.StorageRaw == nil {
		b := new(Badger)
		if err := b.Provision(ctx); err != nil {
			return err
		}
		a.engine = b
		return nil
	}
	mod, err := ctx.LoadModule(a, "StorageRaw")
	if err != nil {
		return fmt.Errorf("loading storage engine: %w", err)
	}
	a.engine = mod.(StorageEngine)
	return nil
}

func (a *App) dispatcherOptions() outbox.Options {
	d := a.Delivery
	return outbox.Options{
		Timeout:     time.Duration(d.Timeout),
		LeaseMargin: time.Duration(d.LeaseMargin),
		Retry:       outbox.RetryPolicy{Base: time.Duration(d.RetryBase), Max: time.Duration(d.RetryMax)},
		PauseAfter:  d.PauseAfter,
		PauseBase:   time.Duration(d.PauseBase),
		Logger:      a.logger.Named("outbox"),
		Now:         now,
	}
}

// metaCookieKey names the shared cookie signing key in the storage.
const metaCookieKey = "cookie_key"

// loadSigner returns the cookie signer, reading (or making) the signing
// key kept in the storage on first use, so that every node of a cluster
// signs with one key. While the storage is unavailable it returns nil (at
// most one try a second): no cookie is set or trusted then.
func (a *App) loadSigner(ctx context.Context) *capture.Signer {
	if s := a.signer.Load(); s != nil {
		return s
	}
	a.signer.mu.Lock()
	defer a.signer.mu.Unlock()
	if s := a.signer.Load(); s != nil {
		return s
	}
	if time.Since(a.signer.tried) < time.Second {
		return nil
	}
	a.signer.tried = time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.StorageTimeout))
	defer cancel()
	key, err := a.rt.store.MetaGetOrCreate(ctx, metaCookieKey, capture.NewKey)
	if err != nil {
		a.logger.Warn("the session signing key cannot be read from the storage yet; no session cookie is set or trusted until it can", zap.Error(err))
		return nil
	}
	s, err := capture.NewSigner(key)
	if err != nil {
		a.logger.Error("the stored session signing key is unusable", zap.Error(err))
		return nil
	}
	a.signer.Store(s)
	return s
}

// Start makes this config the one its dispatcher sends with and the admin
// routes serve, and logs what it runs.
func (a *App) Start() error {
	activate(a)
	a.logSummary()
	return nil
}

// Stop hands the dispatcher back to the newest config still running, if
// any; the dispatcher itself belongs to the storage and stops with the last
// config that uses it (Cleanup).
func (a *App) Stop() error {
	deactivate(a)
	return nil
}

// Cleanup releases this config's hold on the storage.
func (a *App) Cleanup() error {
	if a.rt == nil {
		return nil
	}
	_, err := runtimes.Delete(a.rt.key)
	a.rt = nil
	return err
}

// addSite records a site handler's rules and webhook paths for the startup
// summary.
func (a *App) addSite(desc string) {
	a.sites.Lock()
	a.sites.list = append(a.sites.list, desc)
	a.sites.Unlock()
}

// logSummary writes the startup summary: storage, networks with their
// presets, and each site's rules and webhook paths.
func (a *App) logSummary() {
	nets := make([]string, 0, len(a.Networks))
	for _, name := range sortedKeys(a.Networks) {
		p := a.Networks[name].Preset
		if p == "" {
			p = "get"
		}
		nets = append(nets, name+" ("+p+", "+a.Networks[name].Role+")")
	}
	a.sites.Lock()
	sites := append([]string(nil), a.sites.list...)
	a.sites.Unlock()
	sort.Strings(sites)
	a.logger.Info("postback tracking started",
		zap.String("storage", a.engine.Describe()),
		zap.String("networks", orNone(strings.Join(nets, ", "))),
		zap.String("sites", orNone(strings.Join(sites, "; "))),
		zap.String("attribution", a.Attribution))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// now is the clock; tests replace it.
var now = time.Now

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
