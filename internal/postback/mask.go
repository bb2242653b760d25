package postback

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Masked replaces a secret wherever it would be shown.
const Masked = "REDACTED"

// Masker hides configured secret values wherever they appear: in a stored
// request (URL path or query, header, form or JSON body), an error string, a
// response snippet or a log line. It masks by value, in each form a value
// takes in a request (as is, query- or path-escaped, JSON-escaped,
// base64-encoded), and, as a second line, by name: the values of query
// parameters and headers named like a secret (token, key, auth, …) even
// when they were not configured as secrets. A nil Masker masks by name only.
type Masker struct {
	r *strings.Replacer
}

// NewMasker returns a masker for the secret values given; empty ones are
// ignored.
func NewMasker(secrets ...string) *Masker {
	seen := map[string]bool{}
	var forms []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			forms = append(forms, v)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		add(strings.ReplaceAll(s, "/", `\/`))
		add(base64.StdEncoding.EncodeToString([]byte(s)))
		add(base64.StdEncoding.EncodeToString([]byte(s + ":")))
		add(base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	if len(forms) == 0 {
		return &Masker{}
	}
	// Longer forms first: a Replacer tries its pairs in order at each
	// position, so a secret that contains another is masked whole.
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Masked)
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// String masks every secret value in s.
func (m *Masker) String(s string) string {
	if m == nil || m.r == nil || s == "" {
		return s
	}
	return m.r.Replace(s)
}

// Request returns a copy of r with every secret masked, for the delivery log
// and every answer that shows a request. The request a dispatcher sends is
// rendered again at each attempt and never stored unmasked.
func (m *Masker) Request(r record.Request) record.Request {
	out := r
	out.URL = maskQueryNames(m.String(r.URL))
	out.Body = m.String(r.Body)
	if r.Header != nil {
		out.Header = r.Header.Clone()
		for name, vs := range out.Header {
			for i, v := range vs {
				if secretish(name) {
					vs[i] = Masked
				} else {
					vs[i] = m.String(v)
				}
			}
		}
	}
	return out
}

// secretish reports whether a query parameter, account value or header
// name carries a secret: the presets' access_token, api_secret,
// verification and security tokens, Authorization headers, and the same
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

// maskQueryNames masks the values of query parameters named like secrets.
func maskQueryNames(u string) string {
	i := strings.IndexByte(u, '?')
	if i < 0 {
		return u
	}
	parts := strings.Split(u[i+1:], "&")
	changed := false
	for j, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil && secretish(name) && v != Masked {
			parts[j] = k + "=" + Masked
			changed = true
		}
	}
	if !changed {
		return u
	}
	return u[:i+1] + strings.Join(parts, "&")
}

// Secrets returns the secret values of a network's configuration: the
// preset's secret account values (access tokens, API secrets, keys), and
// any account value or header whose name says it holds a secret, so that a
// Masker can hide them wherever they appear.
func Secrets(cfg Config) []string {
	var out []string
	spec := presetParams[cfg.Preset]
	for k, v := range cfg.Params {
		if slices.Contains(spec.secrets, k) || secretish(k) {
			out = append(out, v)
		}
	}
	for k, v := range cfg.Headers {
		if secretish(k) {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, cred) // the token of "Bearer <token>"
			}
		}
	}
	return out
}
