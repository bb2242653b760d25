package module

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/consent"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// capture records the click IDs of a request in the visitor's session:
// those of the landing URL's query, and those of the networks' click
// cookies that the session does not hold yet. It creates the session when
// the visitor has none (or one that expired or was erased). It returns the
// session ID and its signed reference, and whether the response must set
// the cookie; or the ones it was given when nothing was captured. Bad
// click IDs are ignored and counted; clicks the visitor has not given
// their network's consent for are dropped and counted; a storage failure
// skips the capture (no cookie is promised for a click that was not
// stored); the request goes on either way.
func (h *Handler) capture(r *http.Request, signer *capture.Signer, sessionID, ref string) (string, string, bool) {
	a := h.app
	found := a.recognizer.Read(r.URL.RawQuery)
	var fromCookies capture.Landing
	if a.recognizer.HasCookies() && len(r.Header["Cookie"]) > 0 {
		fromCookies = a.recognizer.ReadCookies(r.Header)
	}
	for _, err := range append(found.Errs, fromCookies.Errs...) {
		a.metrics.badClicks.Inc()
		if c := h.logger.Check(zap.DebugLevel, "ignoring a malformed click ID"); c != nil {
			c.Write(zap.Error(err))
		}
	}
	if len(found.Hits) == 0 && len(fromCookies.Hits) == 0 {
		return sessionID, ref, false
	}
	var granted *record.Consent
	if a.consent != nil {
		state := a.consent.Read(r.Header)
		if state.TCFError != nil {
			if c := h.logger.Check(zap.DebugLevel, "ignoring an unreadable TCF consent string"); c != nil {
				c.Write(zap.Error(state.TCFError))
			}
		}
		found.Hits = h.consented(found.Hits, state)
		fromCookies.Hits = h.consented(fromCookies.Hits, state)
		if len(found.Hits) == 0 && len(fromCookies.Hits) == 0 {
			a.metrics.skipped.WithLabelValues(skipNoConsent).Inc()
			return sessionID, ref, false
		}
		granted = state.Record()
	}
	t := now()
	ip := clientIP(r)
	if a.TruncateIP {
		ip = capture.TruncateIP(ip)
	}
	landed := capture.Landed{At: t, LandingURL: landingURL(r), Referrer: r.Referer(), ClientIP: ip, UserAgent: r.UserAgent(), Consent: granted}
	tps := a.recognizer.NewTouchpoints(found, landed)
	ctx, cancel := h.storageContext(r)
	defer cancel()
	cookieTps, err := h.newCookieClicks(ctx, sessionID, a.recognizer.NewTouchpoints(fromCookies, landed), t)
	if err != nil {
		a.metrics.skipped.WithLabelValues(skipStorage).Inc()
		h.logger.Warn("click not captured: the storage failed", zap.Error(err))
		return sessionID, ref, false
	}
	tps = append(tps, cookieTps...)
	if len(tps) == 0 {
		return sessionID, ref, false // the session holds every cookie click already
	}
	id, fresh, err := a.sessions.Capture(ctx, sessionID, tps, gaClientID(r), t)
	if err != nil {
		// The visitor still gets the page; only this click is lost.
		a.metrics.skipped.WithLabelValues(skipStorage).Inc()
		h.logger.Warn("click not captured: the storage failed", zap.Error(err))
		return sessionID, ref, false
	}
	for _, tp := range cookieTps {
		a.seenClicks.Add(id, tp.Network, tp.ClickID)
	}
	if fresh || id != sessionID {
		ref = signer.Sign(id)
	}
	for _, tp := range tps {
		if i := a.networkIndex(tp.Network); i >= 0 {
			a.clickCounters[i].Inc()
		}
		a.rt.tally.Add(store.StatClicks, tp.Network, "", "", "", 1, 0)
	}
	if fresh {
		a.rt.tally.Add(store.StatSessions, "", "", "", "", 1, 0)
	}
	if c := h.logger.Check(zap.DebugLevel, "click captured"); c != nil {
		c.Write(zap.Int("clicks", len(tps)), zap.Int("from_cookies", len(cookieTps)), zap.Bool("new_session", fresh))
	}
	// A new session gets its cookie; an old one is set again so that its
	// lifetime runs from this click.
	return id, ref, true
}

// consented keeps the hits whose network's consent requirement (and the
// global one) the visitor meets, counting and logging the others.
func (h *Handler) consented(hits []capture.Hit, state *consent.State) []capture.Hit {
	a := h.app
	kept := hits[:0]
	for _, hit := range hits {
		missing := state.Missing(a.consent.Require)
		missing = append(missing, state.Missing(a.netConsent[hit.Network])...)
		if len(missing) == 0 {
			kept = append(kept, hit)
			continue
		}
		a.refusedCounters[hit.Network].Inc()
		if c := h.logger.Check(zap.DebugLevel, "click not captured: no consent"); c != nil {
			c.Write(zap.String("network", a.recognizer.Networks()[hit.Network].Name), zap.Strings("missing", missing))
		}
	}
	return kept
}

// newCookieClicks returns the cookie clicks the session does not hold yet.
// A click cookie comes with every request of its visitor, so a click the
// session is known to hold costs no storage access; an unknown one costs a
// session read.
func (h *Handler) newCookieClicks(ctx context.Context, sessionID string, tps []record.Touchpoint, t time.Time) ([]record.Touchpoint, error) {
	a := h.app
	if len(tps) == 0 || sessionID == "" {
		return tps, nil
	}
	unknown := tps[:0:0]
	for _, tp := range tps {
		if !a.seenClicks.Has(sessionID, tp.Network, tp.ClickID) {
			unknown = append(unknown, tp)
		}
	}
	if len(unknown) == 0 {
		return nil, nil
	}
	missing, live, err := a.sessions.Missing(ctx, sessionID, unknown, t)
	if err != nil {
		return nil, err
	}
	if live {
		for _, tp := range unknown {
			if !slices.ContainsFunc(missing, func(m record.Touchpoint) bool { return m.Network == tp.Network && m.ClickID == tp.ClickID }) {
				a.seenClicks.Add(sessionID, tp.Network, tp.ClickID)
			}
		}
	}
	return missing, nil
}

// networkIndex returns a network's recognizer index, or -1.
func (a *App) networkIndex(name string) int {
	return slices.IndexFunc(a.recognizer.Networks(), func(n capture.Network) bool { return n.Name == name })
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string) {
	tail := h.app.cookieTail[0]
	if r.TLS != nil {
		tail = h.app.cookieTail[1]
	}
	// The key is canonical already: Header.Add would check it again.
	hdr := w.Header()
	hdr["Set-Cookie"] = append(hdr["Set-Cookie"], h.app.Cookie.Name+"="+value+tail)
}

// provisionCookie checks the cookie settings and renders the attributes
// that follow the value once, for plain HTTP and for HTTPS: a click then
// sets its cookie with one concatenation. A name or domain a browser would
// refuse is a configuration error, not a cookie silently left unset.
func (a *App) provisionCookie() error {
	for i, secure := range []bool{false, true} {
		c := &http.Cookie{
			Name: a.Cookie.Name, Value: "v", Path: "/", Domain: a.Cookie.Domain,
			MaxAge: int(a.cookieLife / time.Second), HttpOnly: true, Secure: secure,
			SameSite: http.SameSiteLaxMode,
		}
		if err := c.Valid(); err != nil {
			return fmt.Errorf("session cookie: %w", err)
		}
		a.cookieTail[i] = strings.TrimPrefix(c.String(), a.Cookie.Name+"=v")
	}
	return nil
}

func landingURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// gaClientID reads the Google Analytics client ID from the _ga cookie:
// "GA1.1.1197596843.1673515099" holds client ID "1197596843.1673515099".
func gaClientID(r *http.Request) string {
	v := capture.CookieValue(r.Header, "_ga")
	if strings.Count(v, ".") < 3 {
		return ""
	}
	last := strings.LastIndexByte(v, '.')
	return v[strings.LastIndexByte(v[:last], '.')+1:]
}
