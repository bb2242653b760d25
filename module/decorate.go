package module

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/decorate"
	"github.com/caddy-postback/caddy-postback/internal/webhook"
)

// Decoration adds the visitor's session reference to links to a hosted
// checkout, so that the platform's webhook carries it back and the order
// can be tied to the visitor's clicks.
type Decoration struct {
	// Host is the checkout host, such as buy.stripe.com.
	Host string `json:"host"`
	// Provider picks the parameter the platform passes back: stripe
	// (client_reference_id), lemonsqueezy (checkout[custom][pb_session]),
	// gumroad (pb_session, returned in url_params), clickbank (pb_session
	// on a pay link; tid, encoded as ClickBank keeps it, on a HopLink),
	// jvzoo (pb_session) or warriorplus (s).
	Provider string `json:"provider,omitempty"`
	// Param overrides the query parameter name. Required without Provider.
	Param string `json:"param,omitempty"`
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
	h.targets = nil
	for _, d := range h.Decorate {
		d.Provider = strings.ToLower(d.Provider)
		param := d.Param
		var encode func(string) string
		if param == "" {
			param = decorationParams[d.Provider]
		}
		if pt, ok := webhook.PassThroughFor(d.Provider, d.Host); ok && d.Param == "" {
			param, encode = pt.Param, pt.Encode
		}
		if param == "" {
			return fmt.Errorf("decorate %s: no param (known providers: stripe, lemonsqueezy, gumroad, clickbank, jvzoo, warriorplus)", d.Host)
		}
		t := decorate.Target{Host: strings.ToLower(d.Host), Param: param, Encode: encode}
		if err := t.Validate(); err != nil {
			return err
		}
		h.targets = append(h.targets, t)
	}
	return nil
}

// decorator is the response writer of a visitor with a session whose
// response may carry something of theirs. It marks the response private
// when it sets the session cookie, and when it is HTML and checkouts are
// configured, decorates the links to them as the page streams (see
// internal/decorate), marks the response private and varies it on Cookie.
// Both happen when the header is written, after the upstream has set its
// own Cache-Control.
type decorator struct {
	*caddyhttp.ResponseWriterWrapper
	h *Handler
	// ref is the reference to decorate links with; "" decorates nothing.
	ref string
	// setsCookie: the response sets the session cookie.
	setsCookie bool
	// live reports whether the session still exists (an erased or expired
	// session's cookie decorates nothing); asked only for HTML pages.
	live    func() bool
	decided bool
	// page decorates the body; nil passes it on unchanged.
	page interface {
		io.Writer
		Flush() error
		Close() error
	}
	encoding string // the upstream's Content-Encoding, when page decodes it
	failed   bool   // a decoding error was logged
}

// newDecorator wraps w for a visitor whose session reference is ref; it
// decorates HTML if decorating is true and live says the session exists.
func (h *Handler) newDecorator(w http.ResponseWriter, ref string, decorating, setsCookie bool, live func() bool) *decorator {
	if !decorating {
		ref = ""
	}
	return &decorator{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, h: h, ref: ref, setsCookie: setsCookie, live: live}
}

// askForIdentity makes r ask the upstream for an uncompressed body, which
// can be decorated as it streams; an outer encode handler compresses the
// result as the client asked. It says "identity" rather than nothing:
// without the header, Go's transport (reverse_proxy's) would ask for gzip
// itself. The returned function puts the client's header back, for the
// access log.
func askForIdentity(r *http.Request) (restore func()) {
	accept, had := r.Header["Accept-Encoding"]
	r.Header["Accept-Encoding"] = []string{"identity"}
	return func() {
		if had {
			r.Header["Accept-Encoding"] = accept
		} else {
			delete(r.Header, "Accept-Encoding")
		}
	}
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

// decoratable reports whether a response has a whole HTML page as its
// body: a byte range (206) must not change, and 204 and 304 have no body.
func decoratable(status int, hdr http.Header) bool {
	switch status {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	return isHTML(hdr.Get("Content-Type"))
}

// WriteHeader decides, at the final status, whether the body is decorated
// and marks the response private where it must be.
func (d *decorator) WriteHeader(status int) {
	if !d.decided && status >= 200 {
		d.decided = true
		hdr := d.Header()
		if d.ref != "" && decoratable(status, hdr) && d.live() {
			d.startPage(hdr)
		}
		if d.page != nil || d.setsCookie {
			markPrivate(hdr)
		}
	}
	d.ResponseWriterWrapper.WriteHeader(status)
}

// startPage sets up the page writer: the body is plain HTML, as asked, or
// compressed by an upstream that ignored the request for identity.
func (d *decorator) startPage(hdr http.Header) {
	enc := strings.TrimSpace(hdr.Get("Content-Encoding"))
	if enc == "" || strings.EqualFold(enc, "identity") {
		d.page = decorate.NewWriter(d.ResponseWriterWrapper, d.h.targets, d.ref)
	} else {
		dw, err := decorate.NewDecodingWriter(d.ResponseWriterWrapper, enc, d.h.targets, d.ref)
		if err != nil {
			d.h.logger.Warn("a page in a content encoding that cannot be decoded passes undecorated",
				zap.String("content_encoding", enc))
			return
		}
		d.page, d.encoding = dw, enc
		// Passed on decoded: an outer encode handler compresses it for the
		// client as the client asked.
		delete(hdr, "Content-Encoding")
	}
	delete(hdr, "Content-Length") // the body grows
	delete(hdr, "Accept-Ranges")  // ranges of the upstream's bytes are not ranges of these
	varyCookie(hdr)
}

// Write passes p on through the page writer, if there is one.
func (d *decorator) Write(p []byte) (int, error) {
	if !d.decided {
		d.WriteHeader(http.StatusOK)
	}
	if d.page == nil {
		return d.ResponseWriterWrapper.Write(p)
	}
	n, err := d.page.Write(p)
	if err != nil {
		d.logFailure(err)
	}
	return n, err
}

// ReadFrom makes io.Copy go through Write, which the embedded wrapper's
// ReadFrom would skip.
func (d *decorator) ReadFrom(r io.Reader) (int64, error) {
	if !d.decided {
		d.WriteHeader(http.StatusOK)
	}
	if d.page == nil {
		return d.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(writerOnly{d}, r)
}

// FlushError passes on what the page writer holds before flushing, so a
// streamed page is never stalled by decoration. A flush before the header
// sends the header, as net/http does: it is marked first.
func (d *decorator) FlushError() error {
	if !d.decided {
		d.WriteHeader(http.StatusOK)
	}
	if d.page != nil {
		if err := d.page.Flush(); err != nil {
			d.logFailure(err)
			return err
		}
	}
	return http.NewResponseController(d.ResponseWriterWrapper.ResponseWriter).Flush()
}

// close ends the page: what is held is passed on, and a decoding
// goroutine ends. It runs when the handler returns, panics included.
func (d *decorator) close() {
	if d.page == nil {
		return
	}
	if err := d.page.Close(); err != nil {
		d.logFailure(err)
	}
	d.page = nil
}

// logFailure logs a page that could not be decoded, once. The client got
// the page as far as it decoded, and the response is cut short there.
func (d *decorator) logFailure(err error) {
	if d.failed || !errors.Is(err, decorate.ErrCorruptBody) {
		return // the client went away: nothing to say
	}
	d.failed = true
	d.h.logger.Warn("the upstream sent a compressed page that does not decode; the visitor got it as far as it decoded",
		zap.String("content_encoding", d.encoding), zap.Error(err))
}

// Interface guards
var (
	_ http.ResponseWriter             = (*decorator)(nil)
	_ io.ReaderFrom                   = (*decorator)(nil)
	_ interface{ FlushError() error } = (*decorator)(nil)
)
