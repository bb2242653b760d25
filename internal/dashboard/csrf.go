package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// Cross-site request forgery protection for the actions (POSTs). Each
// browser gets a random cookie (HttpOnly, SameSite=Strict, scoped to the
// dashboard's path); the pages put a token in every form, an HMAC of that
// cookie and the signed-in user under a key kept in the storage (shared by
// every node of a cluster). A POST is accepted only when its token matches
// its cookie and user, and its Origin (or, without one, its Referer) is the
// dashboard's own.
const (
	csrfCookie = "postback_dashboard_csrf"
	csrfField  = "csrf"
	// csrfMeta names the token key in the storage's shared settings.
	csrfMeta = "dashboard_csrf_key"
)

// csrfKey is the token key, read from the storage on first use.
type csrfKey struct {
	mu  sync.Mutex
	key []byte
}

func (d *Dashboard) csrfKey(ctx context.Context) ([]byte, error) {
	d.csrf.mu.Lock()
	defer d.csrf.mu.Unlock()
	if d.csrf.key != nil {
		return d.csrf.key, nil
	}
	key, err := d.st.MetaGetOrCreate(ctx, csrfMeta, func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
		return b
	})
	if err != nil {
		return nil, fmt.Errorf("reading the dashboard's token key: %w", err)
	}
	d.csrf.key = key
	return key, nil
}

// csrfToken returns the form token of a request, setting the browser's
// cookie first when it has none. "" when the storage cannot give the key:
// the page is shown, and its actions will be refused.
func (d *Dashboard) csrfToken(w http.ResponseWriter, r *http.Request) string {
	ctx, cancel := d.context(r)
	defer cancel()
	key, err := d.csrfKey(ctx)
	if err != nil {
		return ""
	}
	req := requestOf(r)
	value := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 22 {
		value = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		value = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: value, Path: req.Base + "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	return tokenFor(key, value, req.User)
}

func tokenFor(key []byte, cookie, user string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// guard lets a POST through only from the dashboard's own pages.
func (d *Dashboard) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if why := d.refuseCrossSite(r); why != "" {
			d.render(w, r, http.StatusForbidden, "error", errorPage{Title: "Request refused",
				Message: why + " Open the page again from the dashboard and retry."})
			return
		}
		next(w, r)
	}
}

// refuseCrossSite says why a POST is refused, or "" to accept it.
func (d *Dashboard) refuseCrossSite(r *http.Request) string {
	own := "http://" + r.Host
	if r.TLS != nil {
		own = "https://" + r.Host
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return "This action came from another site (" + site + ")."
	}
	switch origin, referer := r.Header.Get("Origin"), r.Referer(); {
	case origin != "":
		if origin != own {
			return "This action came from another origin (" + origin + ")."
		}
	case referer != "":
		u, err := url.Parse(referer)
		if err != nil || u.Scheme+"://"+u.Host != own {
			return "This action came from another page than the dashboard's."
		}
	default:
		return "This action carries neither Origin nor Referer, so its source cannot be checked."
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return "This action carries no dashboard cookie."
	}
	ctx, cancel := d.context(r)
	defer cancel()
	key, err := d.csrfKey(ctx)
	if err != nil {
		return "The storage cannot check this action's token now."
	}
	want := tokenFor(key, c.Value, requestOf(r).User)
	if !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(want)) {
		return "This action's token does not match this browser's session."
	}
	return ""
}
