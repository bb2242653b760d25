package module

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// capture records the click IDs of a landing request in the visitor's
// session, creating the session when the visitor has none (or one that
// expired or was erased). It returns the session ID and its signed
// reference, and whether the response must set the cookie; or the ones it
// was given when nothing was captured. Bad click IDs are ignored and
// counted; a storage failure skips the capture (no cookie is promised for
// a click that was not stored); the request goes on either way.
func (h *Handler) capture(r *http.Request, signer *capture.Signer, sessionID, ref string) (string, string, bool) {
	a := h.app
	if a.ConsentCookie != "" && capture.CookieValue(r.Header, a.ConsentCookie) != a.ConsentValue {
		a.metrics.skipped.WithLabelValues("no_consent").Inc()
		return sessionID, ref, false
	}
	found := a.recognizer.Read(r.URL.RawQuery)
	for _, err := range found.Errs {
		a.metrics.badClicks.Inc()
		if c := h.logger.Check(zap.DebugLevel, "ignoring a malformed click ID"); c != nil {
			c.Write(zap.Error(err))
		}
	}
	if len(found.Hits) == 0 {
		return sessionID, ref, false
	}
	t := now()
	ip := clientIP(r)
	if a.TruncateIP {
		ip = capture.TruncateIP(ip)
	}
	tps := a.recognizer.NewTouchpoints(found, capture.Landed{At: t, LandingURL: landingURL(r), Referrer: r.Referer(), ClientIP: ip, UserAgent: r.UserAgent()})
	ctx, cancel := h.storageContext(r)
	defer cancel()
	id, fresh, err := a.sessions.Capture(ctx, sessionID, tps, gaClientID(r), t)
	if err != nil {
		// The visitor still gets the page; only this click is lost.
		a.metrics.skipped.WithLabelValues("storage").Inc()
		h.logger.Warn("click not captured: the storage failed", zap.Error(err))
		return sessionID, ref, false
	}
	if fresh || id != sessionID {
		ref = signer.Sign(id)
	}
	nets := a.recognizer.Networks()
	for _, hit := range found.Hits {
		a.clickCounters[hit.Network].Inc()
		a.rt.tally.Add(store.StatClicks, nets[hit.Network].Name, "", "", "", 1, 0)
	}
	if fresh {
		a.rt.tally.Add(store.StatSessions, "", "", "", "", 1, 0)
	}
	if c := h.logger.Check(zap.DebugLevel, "click captured"); c != nil {
		c.Write(zap.Int("clicks", len(tps)), zap.Bool("new_session", fresh))
	}
	// A new session gets its cookie; an old one is set again so that its
	// lifetime runs from this click.
	return id, ref, true
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
