package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/dashboard"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

func init() {
	caddy.RegisterModule(Dashboard{})
}

// Dashboard is the postback dashboard handler (http.handlers.postback_dashboard):
// pages that show clicks, conversions, every delivery attempt and the
// webhook log, and replay failed postbacks. The operator mounts it on a
// route and protects that route with Caddy's authentication, the way
// Caddy's metrics handler is mounted:
//
//	handle /postback/* {
//		basic_auth { admin <hash> }
//		postback_dashboard
//	}
//
// It answers every request it gets (it does not call the next handler).
// Without an authenticated user it refuses with 403 and a page that says
// how to protect it, unless AllowUnauthenticated is set.
type Dashboard struct {
	// Prefix is the path the dashboard is mounted at: the matcher's prefix
	// in `handle /postback/*`. Under `handle_path`, which strips the prefix,
	// it is found by itself and this is not needed. Default: "/postback".
	Prefix string `json:"prefix,omitempty"`
	// User is the placeholder that holds the signed-in user. Caddy's
	// basic_auth sets the default; with forward_auth, name the header the
	// identity provider answers with and forward_auth copies
	// (`{http.request.header.Remote-User}`). Default: "{http.auth.user.id}".
	User string `json:"user,omitempty"`
	// AllowUnauthenticated serves the dashboard to requests with no
	// signed-in user: only for a route that only trusted people can reach.
	// Default: false.
	AllowUnauthenticated bool `json:"allow_unauthenticated,omitempty"`

	dash *dashboard.Dashboard
}

// DefaultDashboardPrefix is where the dashboard is mounted when no prefix
// is configured.
const DefaultDashboardPrefix = "/postback"

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.postback_dashboard", New: func() caddy.Module { return new(Dashboard) }}
}

// Provision joins the postback app.
func (d *Dashboard) Provision(ctx caddy.Context) error {
	if d.Prefix == "" {
		d.Prefix = DefaultDashboardPrefix
	}
	if d.Prefix != "/" {
		d.Prefix = strings.TrimSuffix(d.Prefix, "/")
	}
	if !strings.HasPrefix(d.Prefix, "/") {
		return fmt.Errorf("dashboard prefix %q: want a path that starts with /", d.Prefix)
	}
	if d.User == "" {
		d.User = "{http.auth.user.id}"
	}
	appIface, err := ctx.App("postback")
	if err != nil {
		return fmt.Errorf("loading postback app: %w", err)
	}
	a := appIface.(*App)
	d.dash = dashboard.New(dashboard.Options{Store: a.rt.store, Host: appHost{a}, Open: d.AllowUnauthenticated,
		Now: func() time.Time { return now() }, Logger: ctx.Logger()})
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	page, base, ok := d.locate(r, repl)
	if !ok {
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("the postback dashboard is mounted at %s but was reached at %s: set its prefix", d.Prefix, r.URL.Path))
	}
	d.dash.Serve(w, r, dashboard.Request{Base: base, Path: page, User: repl.ReplaceAll(d.User, "")})
	return nil
}

// locate splits the request's path into the dashboard's page and the path
// the dashboard is mounted at, as the browser sees it. Under `handle`, the
// path starts with the prefix; under `handle_path` the prefix was stripped,
// and the original path ends with the page.
func (d *Dashboard) locate(r *http.Request, repl *caddy.Replacer) (page, base string, ok bool) {
	cur := r.URL.Path
	orig, _ := repl.GetString("http.request.orig_uri.path")
	prefix := strings.TrimSuffix(d.Prefix, "/")
	if rest, found := strings.CutPrefix(cur, prefix); found && (rest == "" || rest[0] == '/') {
		if orig == "" || orig == cur {
			return rest, prefix, true
		}
		if b, found := strings.CutSuffix(orig, rest); found {
			return rest, b, true
		}
		return rest, prefix, true
	}
	if orig != "" && orig != cur {
		if b, found := strings.CutSuffix(orig, cur); found {
			return cur, b, true
		}
	}
	return "", "", false
}

// appHost tells the dashboard what the running configuration knows.
type appHost struct{ a *App }

// Networks implements dashboard.Host.
func (h appHost) Networks() []dashboard.Network {
	a := h.a
	out := make([]dashboard.Network, 0, len(a.Networks))
	for _, name := range sortedKeys(a.Networks) {
		out = append(out, a.Networks[name].summary(name, a.masker))
	}
	return out
}

// Paused implements dashboard.Host.
func (h appHost) Paused() map[string]time.Time { return h.a.rt.dispatcher.Paused() }

// Storage implements dashboard.Host.
func (h appHost) Storage() string { return h.a.engine.Describe() }

// Wake implements dashboard.Host.
func (h appHost) Wake() { h.a.rt.dispatcher.Wake() }

// SessionID implements dashboard.Host.
func (h appHost) SessionID(ctx context.Context, ref string) string { return h.a.sessionID(ctx, ref) }

// TestFire implements dashboard.Host with the admin API's test fire.
func (h appHost) TestFire(ctx context.Context, tf dashboard.TestFire) (*dashboard.TestResult, error) {
	res, err := h.a.testFire(ctx, TestFire{Network: tf.Network, ClickID: tf.ClickID, Amount: tf.Amount, Order: tf.Order,
		Event: tf.Event, Currency: tf.Currency})
	if err != nil {
		var api caddy.APIError
		if errors.As(err, &api) && api.Err != nil {
			err = api.Err
		}
		return nil, err
	}
	return &dashboard.TestResult{Request: res.Request, Attempt: res.Attempt}, nil
}

// summary describes a network's configuration for the dashboard, with its
// templates as written (placeholders such as {env.TOKEN} unexpanded) and
// every secret masked by value and by name.
func (n *Network) summary(name string, m *postback.Masker) dashboard.Network {
	preset := n.Preset
	if preset == "" {
		preset = "get"
	}
	masked := m.Request(record.Request{Method: n.Method, URL: n.URL, Body: n.Body, Header: headerOf(n.Headers)})
	out := dashboard.Network{Name: name, Preset: preset, Role: n.Role, Window: time.Duration(n.Window), ClickParams: n.ClickParams,
		Events: n.Events, Method: n.Method, URL: masked.URL, Body: masked.Body, BodyType: n.BodyType,
		MaxAge: time.Duration(n.MaxAge), Concurrency: n.Concurrency}
	if out.MaxAge == 0 {
		out.MaxAge = conversion.DefaultMaxAge
	}
	if out.Concurrency == 0 {
		out.Concurrency = outbox.DefaultConcurrency
	}
	if len(masked.Header) > 0 {
		out.Headers = map[string]string{}
		for k, vs := range masked.Header {
			out.Headers[k] = strings.Join(vs, ", ")
		}
	}
	if len(n.Params) > 0 {
		secret := map[string]bool{}
		for _, s := range postback.Secrets(postback.Config{Preset: n.Preset, Params: n.Params}) {
			secret[s] = true
		}
		out.Params = map[string]string{}
		for k, v := range n.Params {
			if secret[v] {
				v = postback.Masked
			}
			out.Params[k] = m.String(v)
		}
	}
	return out
}

func headerOf(m map[string]string) http.Header {
	if len(m) == 0 {
		return nil
	}
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ dashboard.Host              = appHost{}
)
