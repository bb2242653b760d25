package postback

import (
	"net/url"
	"strings"
)

// secretish reports whether a query parameter or header name carries an
// account secret: the presets' access_token, api_secret, verification and
// security tokens and Authorization/Access-Token headers, and the same
// kinds of names in users' own templates (api_key, X-Api-Key, password…).
func secretish(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "key", "password", "auth", "signature"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Redacted returns a copy of the request with account secrets masked (query
// values and headers whose names say they hold one), for the delivery log
// and admin answers, which must never show secrets. The request that is
// sent stays unmasked.
func (r Request) Redacted() Request {
	out := r
	if i := strings.IndexByte(r.URL, '?'); i >= 0 {
		parts := strings.Split(r.URL[i+1:], "&")
		changed := false
		for j, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); err == nil && secretish(name) {
				parts[j] = k + "=REDACTED"
				changed = true
			}
		}
		if changed {
			out.URL = r.URL[:i+1] + strings.Join(parts, "&")
		}
	}
	if r.Header != nil {
		out.Header = r.Header.Clone()
		for name := range out.Header {
			if secretish(name) {
				out.Header[name] = []string{"REDACTED"}
			}
		}
	}
	return out
}
