package module

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/detect"
)

// teeWriter streams a confirmation page to the client unchanged and copies
// at most a capped prefix of it for inspection once the response is done.
// Only responses that some rule's response matcher accepts are copied.
type teeWriter struct {
	*caddyhttp.ResponseWriterWrapper
	rules  []*Rule
	limit  int
	status int
	header http.Header
	// encoding is the body's Content-Encoding as the inner handlers wrote
	// it. It is read before the header goes out, because an outer encode
	// handler shares the header map and adds its own Content-Encoding for
	// the compression it applies after us.
	encoding string
	accept   map[*Rule]bool
	capture  *detect.Capture
	budget   *detect.Budget
}

// inspection bounds the bytes copied for inspection across every response
// in flight; the newest config sets its size (App.InspectionBudget).
var inspection detect.Budget

func newTeeWriter(w http.ResponseWriter, rules []*Rule, limit int, budget *detect.Budget) *teeWriter {
	return &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, rules: rules, limit: limit, budget: budget}
}

// WriteHeader records the final status and decides whether to copy the body.
func (t *teeWriter) WriteHeader(status int) {
	if t.status == 0 && status >= 200 {
		t.status = status
		t.header = t.Header()
		t.encoding = t.header.Get("Content-Encoding")
		t.accept = make(map[*Rule]bool, len(t.rules))
		body := false
		for _, rule := range t.rules {
			if rule.Response.Match(status, t.header) {
				t.accept[rule] = true
				body = body || len(rule.sources) > 0
			}
		}
		if body && t.limit > 0 {
			t.capture = detect.NewCapture(t.limit, t.budget)
		}
	}
	t.ResponseWriterWrapper.WriteHeader(status)
}

// Write passes p on and keeps a copy within the cap.
func (t *teeWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	n, err := t.ResponseWriterWrapper.Write(p)
	if t.capture != nil && n > 0 {
		_, _ = t.capture.Write(p[:n])
	}
	return n, err
}

// ReadFrom keeps the copy when file_server and friends write through
// io.ReaderFrom, which the embedded wrapper would send straight past Write.
func (t *teeWriter) ReadFrom(r io.Reader) (int64, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.capture == nil {
		return t.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(writerOnly{t}, r)
}

// writerOnly hides ReadFrom so io.Copy uses Write.
type writerOnly struct{ io.Writer }

// matched reports whether the response matched rule's response matcher.
// A response never started matches nothing: the handler returned an error
// that Caddy's error handling will answer.
func (t *teeWriter) matched(rule *Rule) bool {
	return t.status != 0 && t.accept[rule]
}

// uninspected reports whether the inspection budget was spent before this
// page was copied whole: its body cannot be read.
func (t *teeWriter) uninspected() bool { return t.capture != nil && t.capture.Exhausted() }

// page returns the copied response, decoded, for the sources.
func (t *teeWriter) page(logger *zap.Logger) *detect.Page {
	p := &detect.Page{Status: t.status, Header: t.header}
	if t.capture == nil {
		return p
	}
	body := t.capture.Bytes()
	p.Truncated = t.capture.Truncated()
	if enc := t.encoding; enc != "" && enc != "identity" {
		dec, err := detect.Decode(body, enc, t.limit)
		switch {
		case err == nil:
		case detect.Partial(err):
			p.Truncated = true
		default:
			logger.Warn("could not decode the confirmation page for inspection; the client got it unchanged",
				zap.String("content_encoding", enc), zap.Error(err))
			dec = nil
		}
		body = dec
	}
	p.Body = body
	return p
}

func (t *teeWriter) release() {
	if t.capture != nil {
		t.capture.Release()
		t.capture = nil
	}
}
