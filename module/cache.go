package module

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// markPrivate makes a response one that no shared cache stores (RFC 9111,
// section 5.2.2.7): a response that sets the session cookie, or that
// carries one visitor's decorated links, must never be served to another
// visitor by a CDN or proxy cache. The response gets "private" and loses
// "public" and "s-maxage" (and a "private" that names only some fields);
// the visitor's own browser cache keeps max-age, no-cache, must-revalidate
// and the rest.
func markPrivate(h http.Header) {
	values := h["Cache-Control"]
	kept := make([]string, 1, 4)
	kept[0] = "private"
	for _, v := range values {
		for d := range cacheDirectives(v) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "public", "s-maxage":
				continue
			case "private":
				// It leads already, unqualified: private="Set-Cookie"
				// would let a shared cache keep all but that field.
				continue
			}
			kept = append(kept, d)
		}
	}
	h["Cache-Control"] = []string{strings.Join(kept, ", ")}
}

// cacheDirectives yields the directives of a Cache-Control value, trimmed,
// splitting at commas outside quoted strings (no-cache="Set-Cookie, Foo").
func cacheDirectives(v string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		start, quoted := 0, false
		for i := 0; i <= len(v); i++ {
			if i < len(v) {
				switch v[i] {
				case '"':
					quoted = !quoted
					continue
				case '\\':
					if quoted {
						i++
					}
					continue
				case ',':
					if quoted {
						continue
					}
				default:
					continue
				}
			}
			if d := strings.TrimSpace(v[start:i]); d != "" && !yield(d) {
				return
			}
			start = i + 1
		}
	}
}

// varyCookie adds Cookie to Vary: the decorated page depends on the
// session cookie, which a cache must know even when it may store the
// response (the visitor's own browser cache).
func varyCookie(h http.Header) {
	if httpguts.HeaderValuesContainsToken(h["Vary"], "Cookie") || httpguts.HeaderValuesContainsToken(h["Vary"], "*") {
		return
	}
	h["Vary"] = append(h["Vary"], "Cookie")
}

// setsCookie reports whether a response header sets the cookie name.
func setsCookie(h http.Header, name string) bool {
	for _, v := range h["Set-Cookie"] {
		if len(v) > len(name) && v[len(name)] == '=' && v[:len(name)] == name {
			return true
		}
	}
	return false
}
