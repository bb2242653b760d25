package postback

import (
	"net/url"
	"strings"
)

// secretQueryKeys are query parameters that carry account secrets in the
// presets' URLs.
var secretQueryKeys = map[string]bool{
	"access_token": true, "api_secret": true, "verification_token": true, "security_token": true,
}

// secretHeaders are headers that carry account secrets.
var secretHeaders = []string{"Authorization", "Access-Token"}

// Redacted returns a copy of the request with account secrets masked (the
// access_token and api_secret query values, the Authorization and
// Access-Token headers), for the delivery log and admin answers, which must
// never show secrets. The request that is sent stays unmasked.
func (r Request) Redacted() Request {
	out := r
	if i := strings.IndexByte(r.URL, '?'); i >= 0 {
		parts := strings.Split(r.URL[i+1:], "&")
		changed := false
		for j, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); err == nil && secretQueryKeys[name] {
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
		for _, h := range secretHeaders {
			if out.Header.Get(h) != "" {
				out.Header.Set(h, "REDACTED")
			}
		}
	}
	return out
}
