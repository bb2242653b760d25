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
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/decorate"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the postback site handler. On every request it covers it
// captures click IDs into the visitor's session; for visitors with a
// session it applies the conversion rules to confirmation pages as they
// stream through and decorates checkout links; and it serves the configured
// webhook endpoints and universal postback endpoints.
//
// A request with no click ID, no session cookie and no webhook or endpoint
// path costs a
// query-string scan and a cookie-header scan: no allocation, no storage
// access. Whatever the storage does, the page is served.
type Handler struct {
	// Conversions are the rules that recognise confirmation pages and read
	// the order from them.
	Conversions []*Rule `json:"conversions,omitempty"`
	// Webhooks are the endpoints that receive e-commerce platforms'
	// webhooks and marketplaces' payment notifications.
	Webhooks []*Webhook `json:"webhooks,omitempty"`
	// Endpoints are universal postback endpoints: URLs that a backend, CRM
	// or tracker calls to report conversions.
	Endpoints []*Endpoint `json:"endpoints,omitempty"`
	// Decorate adds the visitor's session reference to links to hosted
	// checkouts in HTML responses, so the platform's webhook carries it
	// back. Default: none.
	Decorate []*Decoration `json:"decorate,omitempty"`

	app      *App
	logger   *zap.Logger
	webhooks map[string]*Webhook
	// tokenPaths are the path prefixes of webhooks whose secret is in the path.
	tokenPaths []tokenPath
	endpoints  map[string]*Endpoint
	// endpointPrefixes are the endpoints whose token is in the path.
	endpointPrefixes []endpointPrefix
	rejections       *rejectionLog
	// targets are the checkouts whose links are decorated.
	targets []decorate.Target
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.postback", New: func() caddy.Module { return new(Handler) }}
}

// Provision sets up the rules and endpoints and joins the postback app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.rejections = new(rejectionLog)
	appIface, err := ctx.App("postback")
	if err != nil {
		return fmt.Errorf("loading postback app: %w", err)
	}
	h.app = appIface.(*App)
	var desc []string
	for i, rule := range h.Conversions {
		if err := rule.provision(ctx); err != nil {
			return fmt.Errorf("conversion %d: %w", i, err)
		}
		desc = append(desc, "conversion "+strings.Join(rule.Events, "+"))
	}
	if err := h.provisionWebhooks(ctx); err != nil {
		return err
	}
	for _, wh := range h.Webhooks {
		desc = append(desc, "webhook "+wh.Path+" ("+wh.Provider+")")
	}
	if err := h.provisionEndpoints(); err != nil {
		return err
	}
	for _, ep := range h.Endpoints {
		desc = append(desc, "endpoint "+ep.Path)
	}
	if err := h.provisionDecorations(); err != nil {
		return err
	}
	for _, d := range h.Decorate {
		desc = append(desc, "decorate "+d.Host)
	}
	if len(desc) > 0 {
		h.app.addSite(strings.Join(desc, ", "))
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.webhooks != nil || h.tokenPaths != nil {
		if wh, ok := h.webhookFor(r.URL.Path); ok {
			return h.serveWebhook(w, r, wh)
		}
	}
	if h.endpoints != nil {
		if ep, token, ok := h.endpointFor(r.URL.Path); ok {
			return h.serveEndpoint(w, r, ep, token)
		}
	}
	a := h.app
	click := a.recognizer.Has(r.URL.RawQuery)
	cookies := len(r.Header["Cookie"]) > 0
	cookie := cookies && capture.CookieValue(r.Header, a.Cookie.Name) != ""
	// A network's click cookie counts as a click: it is captured once per
	// session, on whichever request first brings it.
	click = click || cookies && a.recognizer.HasCookies() && a.recognizer.HasCookie(r.Header)
	if !click && !cookie {
		return next.ServeHTTP(w, r)
	}
	return h.serveTracked(w, r, next, click, cookie)
}

// serveTracked handles a request that carries a click ID (in its query or
// a click cookie) or a session cookie.
func (h *Handler) serveTracked(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, click, cookie bool) error {
	a := h.app
	signer := a.loadSigner(r.Context())
	if signer == nil {
		// The storage holds the signing key and cannot be read: no session
		// can be trusted or made, and the page is served as it is.
		if click {
			a.metrics.skipped.WithLabelValues(skipStorage).Inc()
		}
		return next.ServeHTTP(w, r)
	}
	sessionID, ref := "", ""
	if cookie {
		if id, v, ok := signer.VerifiedSession(r.Header, a.Cookie.Name); ok {
			sessionID, ref = id, v
		} else if c := h.logger.Check(zap.DebugLevel, "ignoring a session cookie with a bad signature"); c != nil {
			c.Write(zap.String("remote_ip", clientIP(r)))
		}
	}
	if click {
		var fresh bool
		sessionID, ref, fresh = h.capture(r, signer, sessionID, ref)
		if fresh {
			h.setCookie(w, r, ref)
		}
	}
	if sessionID == "" {
		return next.ServeHTTP(w, r)
	}
	rules := h.matchingRules(r)
	// A response that sets the session cookie, or that carries links
	// decorated with this visitor's reference, must stay out of shared
	// caches; the decorator marks it when the header is written.
	setsSession := click && setsCookie(w.Header(), a.Cookie.Name)
	if decorating := len(h.targets) > 0; decorating || setsSession {
		dw := h.newDecorator(w, ref, decorating, setsSession, func() bool { return h.sessionLive(r, sessionID) })
		defer dw.close()
		w = dw
		if decorating {
			defer askForIdentity(r)()
		}
	}
	if len(rules) == 0 {
		return next.ServeHTTP(w, r)
	}
	tw := newTeeWriter(w, rules, h.maxBody(rules), &inspection)
	defer tw.release()
	if err := next.ServeHTTP(tw, r); err != nil {
		return err // an upstream error page is no confirmation page
	}
	if tw.status != 0 {
		// Send what net/http still buffers (up to 4 KiB) before reading the
		// order: the page is complete, and the visitor should not wait for
		// the extraction and the storage commit.
		_ = http.NewResponseController(w).Flush()
	}
	h.convert(r, tw, rules, sessionID)
	return nil
}

// storageContext bounds a storage call a visitor's request waits on.
func (h *Handler) storageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), time.Duration(h.app.StorageTimeout))
}

// clientIP is the client address as Caddy determined it (trusted proxies
// taken into account).
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return ip
	}
	return r.RemoteAddr
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// sessionLive reports whether a session that verified still exists: an
// erased or expired session's cookie earns nothing. While the storage
// cannot answer, it is taken as live (its reference only helps a later
// webhook find the visitor, and a session that is gone then finds nothing).
func (h *Handler) sessionLive(r *http.Request, id string) bool {
	ctx, cancel := h.storageContext(r)
	defer cancel()
	_, err := h.app.rt.store.Session(ctx, id, now())
	return !errors.Is(err, store.ErrNotFound)
}
