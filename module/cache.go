package module

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// markPrivate makes a response that carries one visitor's session (its
// cookie, or links decorated with its reference) unfit for shared caches
// (RFC 9111 §5.2.2.7): "public" becomes "private", "s-maxage" and
// "proxy-revalidate" go (they speak only to shared caches), the rest is
// kept; a response without Cache-Control gets "private". Vary: Cookie
// tells private caches that the body depends on the cookie.
func markPrivate(h http.Header) {
	var out []string
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			switch name {
			case "", "public", "private", "s-maxage", "proxy-revalidate":
				continue
			}
			out = append(out, d)
		}
	}
	h.Set("Cache-Control", strings.Join(append([]string{"private"}, out...), ", "))
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); strings.EqualFold(f, "cookie") || f == "*" {
				return
			}
		}
	}
	h.Add("Vary", "Cookie")
}

// privateWriter marks a response private when its header is written, after
// the handlers behind it (a reverse proxy copying the upstream's
// Cache-Control) have set theirs.
type privateWriter struct {
	*caddyhttp.ResponseWriterWrapper
	done bool
}

func newPrivateWriter(w http.ResponseWriter) http.ResponseWriter {
	return &privateWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

// WriteHeader implements http.ResponseWriter.
func (p *privateWriter) WriteHeader(status int) {
	if !p.done && status >= 200 {
		p.done = true
		markPrivate(p.Header())
	}
	p.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (p *privateWriter) Write(b []byte) (int, error) {
	if !p.done {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.Write(b)
}

// ReadFrom makes io.Copy go through WriteHeader first.
func (p *privateWriter) ReadFrom(r io.Reader) (int64, error) {
	if !p.done {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.ReadFrom(r)
}
