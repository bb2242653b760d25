// Package dashboard serves caddy-postback's dashboard: server-rendered pages
// (html/template, assets embedded, usable without JavaScript) that show what
// the tracker does — an overview of a period, conversions, deliveries with
// every attempt, click lookup, networks with a test fire, and the webhook
// log — and let an operator replay failed postbacks. It reads through the
// storage ports, so the same pages work on one node and on a cluster, and
// asks a Host for what only the running configuration knows. It knows
// nothing of Caddy: the caller mounts it, says where, and says who is
// signed in.
package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Host is what the running configuration tells the dashboard.
type Host interface {
	// Networks describes the configured networks, sorted by name, with
	// every secret masked.
	Networks() []Network
	// Paused returns the networks whose deliveries are paused now, with
	// the end of each pause.
	Paused() map[string]time.Time
	// Storage says where the data lives; never a secret.
	Storage() string
	// TestFire sends one test conversion to a network, outside the queue,
	// and reports the request sent (masked) and the answer.
	TestFire(ctx context.Context, tf TestFire) (*TestResult, error)
	// Wake makes the dispatcher look for due deliveries now, after a
	// replay.
	Wake()
	// SessionID reads a session reference: a session cookie's value
	// (verified) or a bare session ID.
	SessionID(ctx context.Context, ref string) string
}

// Network is a configured network as the dashboard shows it: its
// configuration summary, every secret already masked.
type Network struct {
	// Name is the network's configured name.
	Name string
	// Preset names its postback dialect ("get" for a plain URL template).
	Preset string
	// Role is "affiliate" or "platform".
	Role string
	// Window is its attribution window.
	Window time.Duration
	// ClickParams are the landing-URL parameters that carry its click IDs.
	ClickParams []string
	// Events limits the events it is told of; empty for all.
	Events []string
	// Method, URL, Body, BodyType and Headers are its request templates as
	// written (placeholders unexpanded), secrets masked; empty where the
	// preset decides.
	Method   string
	URL      string
	Body     string
	BodyType string
	Headers  map[string]string
	// Params are its account values, secrets masked.
	Params map[string]string
	// MaxAge is how long a failing postback is retried.
	MaxAge time.Duration
	// Concurrency bounds its parallel postbacks.
	Concurrency int
}

// TestFire asks for a test conversion to Network; the other fields are the
// test order's click ID, amount, currency, order ID and event, and empty
// ones take the Host's defaults.
type TestFire struct {
	Network  string
	ClickID  string
	Amount   string
	Currency string
	Order    string
	Event    string
}

// TestResult is a test fire's request, as sent with its secrets masked,
// and the answer.
type TestResult struct {
	Request record.Request
	Attempt record.Attempt
}

// Options configures a Dashboard.
type Options struct {
	// Store is read for every page, and written by replays.
	Store store.Store
	// Host answers for the running configuration.
	Host Host
	// Open serves requests with no authenticated user. Default: false (they
	// get a 403 page that says how to protect the dashboard).
	Open bool
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives errors the pages cannot show. Default: none.
	Logger *zap.Logger
}

// Dashboard serves the dashboard's pages.
type Dashboard struct {
	st     store.Store
	host   Host
	open   bool
	now    func() time.Time
	logger *zap.Logger
	mux    *http.ServeMux
	csrf   csrfKey
}

// Request says where a request reached the dashboard and who made it.
type Request struct {
	// Base is the path the dashboard is mounted at, without a trailing
	// slash ("/postback"); every link is built under it.
	Base string
	// Path is the request's path below Base: "/" for the overview,
	// "/conversions/<id>" for a conversion, …
	Path string
	// User is the authenticated user; "" when nobody signed in.
	User string
}

// New returns a dashboard.
func New(o Options) *Dashboard {
	d := &Dashboard{st: o.Store, host: o.Host, open: o.Open, now: o.Now, logger: o.Logger}
	if d.now == nil {
		d.now = time.Now
	}
	if d.logger == nil {
		d.logger = zap.NewNop()
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", d.serveOverview)
	m.HandleFunc("GET /conversions", d.serveConversions)
	m.HandleFunc("GET /conversions/{id}", d.serveConversion)
	m.HandleFunc("GET /deliveries", d.serveDeliveries)
	m.HandleFunc("GET /deliveries/{id}", d.serveDelivery)
	m.HandleFunc("POST /deliveries/{id}/replay", d.guard(d.serveReplay))
	m.HandleFunc("GET /clicks", d.serveClicks)
	m.HandleFunc("GET /networks", d.serveNetworks)
	m.HandleFunc("GET /networks/{name}", d.serveNetwork)
	m.HandleFunc("POST /networks/{name}/test", d.guard(d.serveTestFire))
	m.HandleFunc("POST /networks/{name}/replay", d.guard(d.serveReplayDead))
	m.HandleFunc("GET /webhooks", d.serveWebhooks)
	m.HandleFunc("GET /webhooks/{id}", d.serveWebhook)
	m.HandleFunc("GET /assets/{file}", serveAsset)
	m.HandleFunc("/", d.serveNotFound)
	d.mux = m
	return d
}

type requestKey struct{}

// Serve answers one request. GET never changes anything; the actions
// (replay, replay all dead letters, test fire) are POSTs that carry the
// page's CSRF token and come from the dashboard's own origin.
func (d *Dashboard) Serve(w http.ResponseWriter, r *http.Request, req Request) {
	req.Base = strings.TrimSuffix(req.Base, "/")
	if req.Path == "" {
		http.Redirect(w, r, req.Base+"/", http.StatusSeeOther)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if req.User == "" && !d.open && !strings.HasPrefix(req.Path, "/assets/") {
		d.render(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, req)), http.StatusForbidden, "refused", refusedPage{})
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), requestKey{}, req))
	u := *r.URL
	u.Path, u.RawPath = req.Path, ""
	r2.URL = &u
	d.mux.ServeHTTP(w, r2)
}

func requestOf(r *http.Request) Request {
	req, _ := r.Context().Value(requestKey{}).(Request)
	return req
}

// context bounds the storage calls of one page.
func (d *Dashboard) context(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// fail answers a storage or input error with a page that says what went
// wrong: 404 for a missing record, 503 while the storage is down, 400 for
// bad input; anything else is logged and shown without detail.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad badInput
	switch {
	case errors.As(err, &bad):
		d.render(w, r, http.StatusBadRequest, "error", errorPage{Title: "Bad request", Message: bad.Error()})
	case errors.Is(err, store.ErrNotFound):
		d.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found",
			Message: "There is no such record: it may have expired with its retention, or been erased."})
	case errors.Is(err, store.ErrState):
		d.render(w, r, http.StatusConflict, "error", errorPage{Title: "Not possible now",
			Message: "The delivery is waiting or being sent; only delivered and dead postbacks can be replayed."})
	case errors.Is(err, store.ErrUnavailable):
		d.render(w, r, http.StatusServiceUnavailable, "error", errorPage{Title: "Storage unavailable",
			Message: "The tracker's storage cannot be read now (" + d.host.Storage() + "). The site is served as usual; try again shortly."})
	default:
		d.logger.Error("dashboard page failed", zap.String("path", r.URL.Path), zap.Error(err))
		d.render(w, r, http.StatusInternalServerError, "error", errorPage{Title: "Internal error",
			Message: "The page could not be built; Caddy's log has the details."})
	}
}

func (d *Dashboard) serveNotFound(w http.ResponseWriter, r *http.Request) {
	// A page or action that exists for another method is a 405.
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := d.mux.Handler(probe); pattern != "/" {
			w.Header().Set("Allow", m)
			d.render(w, r, http.StatusMethodNotAllowed, "error", errorPage{Title: "Method not allowed",
				Message: r.Method + " " + r.URL.Path + " is not allowed; use " + m + "."})
			return
		}
	}
	d.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: "The dashboard has no page at " + r.URL.Path + "."})
}

// badInput is a request the pages cannot answer: a filter outside its
// allowed values, a malformed form.
type badInput struct{ msg string }

func (b badInput) Error() string { return b.msg }

// link returns a dashboard path under base with a query.
func link(base, path string, q url.Values) string {
	s := base + path
	if enc := q.Encode(); enc != "" {
		s += "?" + enc
	}
	return s
}
