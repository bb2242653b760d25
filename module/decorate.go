package module

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Decoration adds the visitor's session reference to links to a hosted
// checkout, so that the platform's webhook carries it back and the order
// can be tied to the visitor's clicks.
type Decoration struct {
	// Host is the checkout host, such as buy.stripe.com.
	Host string `json:"host"`
	// Provider picks the parameter the platform passes back: stripe
	// (client_reference_id), lemonsqueezy (checkout[custom][pb_session]) or
	// gumroad (pb_session, returned in url_params).
	Provider string `json:"provider,omitempty"`
	// Param overrides the query parameter name. Required without Provider.
	Param string `json:"param,omitempty"`

	needle     []byte // "//host"
	withScheme []byte // "https://host"
}

// decorationParams are the parameters each platform hands back in its
// webhook: Stripe's client_reference_id, Lemon Squeezy's custom checkout
// data, and any URL parameter for Gumroad.
var decorationParams = map[string]string{
	"stripe":       "client_reference_id",
	"lemonsqueezy": "checkout[custom][pb_session]",
	"gumroad":      "pb_session",
}

func (h *Handler) provisionDecorations() error {
	for _, d := range h.Decorate {
		if d.Host == "" || strings.ContainsAny(d.Host, "/:?# ") {
			return fmt.Errorf("decorate host %q: give a bare host name such as buy.stripe.com", d.Host)
		}
		d.Host = strings.ToLower(d.Host)
		if d.Param == "" {
			d.Param = decorationParams[d.Provider]
		}
		if d.Param == "" {
			return fmt.Errorf("decorate %s: no param (known providers: stripe, lemonsqueezy, gumroad)", d.Host)
		}
		d.needle = []byte("//" + d.Host)
		d.withScheme = []byte("https://" + d.Host)
	}
	return nil
}

// decorateWriter wraps w to decorate checkout links for a visitor whose
// session reference is ref. Without decorations it returns w itself.
func (h *Handler) decorateWriter(w http.ResponseWriter, r *http.Request, sessionID, ref string) http.ResponseWriter {
	if len(h.Decorate) == 0 || ref == "" {
		return w
	}
	return &decorator{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, decos: h.Decorate, ref: ref,
		live: func() bool { return h.sessionLive(r, sessionID) }}
}

// maxHeldURL bounds how much of an unfinished link is held back between
// writes; a longer "URL" is passed on undecorated.
const maxHeldURL = 4096

// decorator rewrites checkout links in an HTML response as it streams. Only
// the tail of a write that might be the start of a link is held back until
// the next write, so the first bytes reach the client at once.
type decorator struct {
	*caddyhttp.ResponseWriterWrapper
	decos []*Decoration
	ref   string
	// live reports whether the session still exists (an erased or expired
	// session's cookie decorates nothing); asked only for HTML responses.
	live    func() bool
	decided bool
	active  bool
	held    []byte
}

// isHTML reports whether a Content-Type is text/html, with or without
// parameters. It runs on every response to a visitor with a session, so it
// compares instead of parsing the media type.
func isHTML(contentType string) bool {
	const html = "text/html"
	ct := strings.TrimLeft(contentType, " \t")
	if len(ct) < len(html) || !strings.EqualFold(ct[:len(html)], html) {
		return false
	}
	rest := strings.TrimLeft(ct[len(html):], " \t")
	return rest == "" || rest[0] == ';'
}

// WriteHeader decides whether the response is decorated: uncompressed HTML only.
func (d *decorator) WriteHeader(status int) {
	if !d.decided && status >= 200 {
		d.decided = true
		enc := d.Header().Get("Content-Encoding")
		d.active = isHTML(d.Header().Get("Content-Type")) && (enc == "" || enc == "identity") && status != http.StatusNoContent && d.live()
		if d.active {
			d.Header().Del("Content-Length") // the body grows
			markPrivate(d.Header())
		}
	}
	d.ResponseWriterWrapper.WriteHeader(status)
}

// Write decorates and passes on what it can; it reports all of p written.
func (d *decorator) Write(p []byte) (int, error) {
	if !d.decided {
		d.WriteHeader(http.StatusOK)
	}
	if !d.active {
		return d.ResponseWriterWrapper.Write(p)
	}
	data := p
	if len(d.held) > 0 {
		data = append(d.held, p...)
	}
	var werr error
	rest := d.rewrite(data, func(b []byte) {
		if werr == nil && len(b) > 0 {
			_, werr = d.ResponseWriterWrapper.Write(b)
		}
	})
	// rest lies at the end of data, which may share d.held's array: copy
	// moves it to the front safely.
	d.held = append(d.held[:0], rest...)
	if werr != nil {
		return 0, werr
	}
	return len(p), nil
}

// ReadFrom makes io.Copy go through Write, which the embedded wrapper's
// ReadFrom would skip.
func (d *decorator) ReadFrom(r io.Reader) (int64, error) {
	if !d.decided {
		d.WriteHeader(http.StatusOK)
	}
	if !d.active {
		return d.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(writerOnly{d}, r)
}

// FlushError sends the held bytes before flushing, so a streamed page is
// never stalled by decoration.
func (d *decorator) FlushError() error {
	d.finish()
	return http.NewResponseController(d.ResponseWriterWrapper.ResponseWriter).Flush()
}

// finish writes whatever is still held back.
func (d *decorator) finish() {
	if len(d.held) > 0 {
		_, _ = d.ResponseWriterWrapper.Write(d.held)
		d.held = nil
	}
}

// rewrite passes data on through emit, unchanged stretches as they are and
// checkout links decorated, and returns the tail to hold back: an unfinished
// link, or what may begin one.
func (d *decorator) rewrite(data []byte, emit func([]byte)) (rest []byte) {
	i := 0
	for {
		start, deco := d.next(data, i)
		if start < 0 {
			break
		}
		// Back up over a scheme ("https:") in front of "//host".
		begin := start
		for _, s := range []string{"https:", "http:"} {
			if start >= len(s) && string(data[start-len(s):start]) == s {
				begin = start - len(s)
				break
			}
		}
		after := start + len(deco.needle)
		if after >= len(data) {
			emit(data[i:begin])
			return data[begin:]
		}
		if c := data[after]; c != '/' && c != '?' && c != '"' && c != '\'' && c != '#' {
			// buy.stripe.com.evil.example or buy.stripe.community: not ours.
			emit(data[i:after])
			i = after
			continue
		}
		end := bytes.IndexAny(data[after:], "\"'<> \t\r\n`")
		if end < 0 {
			if len(data)-begin > maxHeldURL {
				emit(data[i:])
				return nil
			}
			emit(data[i:begin])
			return data[begin:]
		}
		end += after
		emit(data[i:begin])
		emit(decorateURL(data[begin:end], deco.Param, d.ref))
		i = end
	}
	// Hold back a tail that could be the start of a needle.
	keep := 0
	for _, deco := range d.decos {
		for k := min(len(deco.withScheme)-1, len(data)-i); k > keep; k-- {
			tail := data[len(data)-k:]
			if bytes.HasPrefix(deco.withScheme, tail) || bytes.HasPrefix(deco.needle, tail) {
				keep = k
				break
			}
		}
	}
	emit(data[i : len(data)-keep])
	return data[len(data)-keep:]
}

// next finds the earliest needle at or after i.
func (d *decorator) next(data []byte, i int) (int, *Decoration) {
	best, which := -1, (*Decoration)(nil)
	for _, deco := range d.decos {
		if j := bytes.Index(data[i:], deco.needle); j >= 0 && (best < 0 || i+j < best) {
			best, which = i+j, deco
		}
	}
	return best, which
}

// decorateURL appends param=ref to a link (before any fragment), unless the
// link already carries the parameter. Links inside HTML attributes that
// already use "&amp;" get "&amp;" too.
func decorateURL(u []byte, param, ref string) []byte {
	s := string(u)
	frag := ""
	if k := strings.IndexByte(s, '#'); k >= 0 {
		s, frag = s[:k], s[k:]
	}
	key := url.QueryEscape(param) + "="
	if strings.Contains(s, "?"+key) || strings.Contains(s, "&"+key) || strings.Contains(s, ";"+key) ||
		strings.Contains(s, "?"+param+"=") || strings.Contains(s, "&"+param+"=") {
		return u
	}
	sep := "?"
	if strings.Contains(s, "?") {
		sep = "&"
		if strings.Contains(s, "&amp;") {
			sep = "&amp;"
		}
		if strings.HasSuffix(s, "?") || strings.HasSuffix(s, "&") {
			sep = ""
		}
	}
	return []byte(s + sep + key + url.QueryEscape(ref) + frag)
}
