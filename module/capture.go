package module

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
)

// capture records the click IDs of a landing request in the visitor's
// session, creating the session (and setting its cookie) when the visitor
// has none. It returns the session ID and its signed reference (the cookie
// value), or the ones it was given when nothing was captured. Bad click IDs
// are ignored and counted; the request goes on.
func (h *Handler) capture(w http.ResponseWriter, r *http.Request, sessionID, ref string) (string, string) {
	a := h.app
	if a.ConsentCookie != "" && capture.CookieValue(r.Header, a.ConsentCookie) != a.ConsentValue {
		return sessionID, ref
	}
	found := a.recognizer.Read(r.URL.RawQuery)
	for _, err := range found.Errs {
		if a.metrics != nil {
			a.metrics.badClicks.Inc()
		}
		if c := h.logger.Check(zap.DebugLevel, "ignoring a malformed click ID"); c != nil {
			c.Write(zap.Error(err))
		}
	}
	hits := found.Hits
	if len(hits) == 0 {
		return sessionID, ref
	}
	t := now()
	ip := clientIP(r)
	if a.TruncateIP {
		ip = capture.TruncateIP(ip)
	}
	nets := a.recognizer.Networks()
	landing, referrer, ua := landingURL(r), r.Referer(), r.UserAgent()
	tps := make([]capture.Touchpoint, 0, len(hits))
	for _, hit := range hits {
		n := nets[hit.Network]
		tps = append(tps, capture.Touchpoint{
			Network: n.Name, Param: hit.Param, ClickID: hit.ClickID,
			CapturedAt: t, ExpiresAt: t.Add(n.Window),
			LandingURL: landing, Referrer: referrer, ClientIP: ip, UserAgent: ua, Subs: found.Subs,
		})
	}
	fresh := sessionID == ""
	var err error
	if fresh {
		var id string
		if id, err = a.sessions.Create(tps, gaClientID(r)); err == nil {
			sessionID, ref = id, a.signer.Sign(id)
		}
	} else {
		err = a.sessions.Add(sessionID, tps, gaClientID(r))
	}
	if err != nil {
		// The visitor still gets the page; only this click is lost.
		h.logger.Error("storing captured click", zap.Error(err))
		return sessionID, ref
	}
	// A new session gets its cookie; an old one is set again so that its
	// lifetime runs from this click.
	h.setCookie(w, r, ref)
	if a.clickCounters != nil {
		for _, hit := range hits {
			a.clickCounters[hit.Network].Inc()
		}
	}
	if c := h.logger.Check(zap.DebugLevel, "click captured"); c != nil {
		c.Write(zap.Int("clicks", len(tps)), zap.Bool("new_session", fresh))
	}
	return sessionID, ref
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

// now is the clock; tests replace it.
var now = time.Now
