// Package decorate adds a visitor's session reference to the links of an
// HTML page that lead to a hosted checkout (a Stripe Payment Link, a Lemon
// Squeezy or Gumroad checkout), as the page streams to the visitor, so that
// the platform's webhook carries the reference back.
//
// Only navigation attributes are rewritten: href on a and area, action on
// form, and formaction on button and input. formaction belongs with action:
// a submit button's formaction replaces its form's action, so a form whose
// action is decorated but whose button is not would still send the visitor
// to the checkout without the reference. Nothing else is a navigation the
// visitor starts: link, img, script, iframe and srcset load resources, and a
// data attribute or a URL inside a script or JSON is data for a script whose
// use of it this package cannot know.
//
// Every byte outside a rewritten attribute value passes unchanged: scripts,
// styles, comments, doctypes, CDATA, the raw text of textarea and title, and
// all other attributes. The page is lexed as the WHATWG HTML tokenizer does
// (with scripting enabled, so noscript holds raw text, as browsers read it),
// including the script-data escape states, so that a "</script>" inside an
// HTML comment in a script does not end the script. Content in SVG and
// MathML is lexed as HTML: there a style or script element does not hold raw
// text, and the lexer errs towards leaving more alone, never less.
//
// A value is decorated when, with its character references decoded, it is
// an absolute http or https URL, or a protocol-relative one ("//host/..."),
// whose host equals a target's host (case-insensitively; a port is allowed,
// a longer host such as buy.stripe.com.evil.example is not a match), and its
// query does not already carry the target's parameter. The parameter goes
// before any fragment, joined by "&amp;" when the query already has
// parameters; the page's quoting is kept.
//
// A Writer passes data on as it arrives: it holds back only the value of a
// candidate attribute that a write left unfinished, and a value longer than
// MaxValue bytes passes undecorated.
package decorate

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// MaxValue is the longest attribute value that is decorated. A longer value
// (a data: URL, say) passes through unchanged, and no more than this is
// ever held back between writes.
const MaxValue = 16 << 10

// Target is a checkout host whose links get the session reference.
type Target struct {
	// Host is the checkout's host name, such as buy.stripe.com. It is
	// matched exactly, ignoring case.
	Host string
	// Param is the query parameter that carries the reference, such as
	// client_reference_id. It is query-escaped when added.
	Param string
	// Encode, when set, rewrites the reference into a value the platform
	// keeps intact (ClickBank's tracking IDs take only a-z, 0-9 and _).
	Encode func(ref string) string
}

// Validate reports whether t can be used: a bare host name and a parameter.
func (t Target) Validate() error {
	if t.Host == "" || strings.ContainsAny(t.Host, "/\\:?#@ \t\r\n") {
		return fmt.Errorf("decorate host %q: give a bare host name such as buy.stripe.com", t.Host)
	}
	if t.Param == "" {
		return fmt.Errorf("decorate %s: no query parameter", t.Host)
	}
	return nil
}

// Writer decorates the checkout links of an HTML page written to it and
// passes the page on to its destination. It is not safe for concurrent use.
type Writer struct {
	dst     io.Writer
	targets []Target
	ref     string
	err     error

	lexer
	// holding: the value of a candidate attribute is being collected in
	// held (the part that earlier writes left unfinished).
	holding bool
	held    []byte
	// out is what a write passes on when it is not a stretch of p: a link
	// in it was decorated, or a held value ended. Its buffer, outp, comes
	// from outPool for the write.
	out     []byte
	outp    *[]byte
	scratch []byte
}

// outPool holds buffers for Writer.out: a page written in 32 KiB pieces
// would otherwise allocate one per visitor and page.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10+512); return &b }}

// buffer returns w.out, empty from the pool if the write has none yet.
func (w *Writer) buffer() []byte {
	if w.outp == nil {
		w.outp = outPool.Get().(*[]byte)
		w.out = (*w.outp)[:0]
	}
	return w.out
}

// release returns w.out's buffer to the pool once it is passed on: a
// destination does not keep what it is given.
func (w *Writer) release() {
	if cap(w.out) <= 1<<20 {
		*w.outp = w.out[:0]
		outPool.Put(w.outp)
	}
	w.out, w.outp = nil, nil
}

// NewWriter returns a Writer that decorates links to targets with ref and
// writes the result to dst. The targets must be valid (see
// Target.Validate); the slice is used, not copied.
func NewWriter(dst io.Writer, targets []Target, ref string) *Writer {
	return &Writer{dst: dst, targets: targets, ref: ref}
}

// Write lexes p, passes on everything but an unfinished candidate value,
// and reports p consumed. What a write passes on goes to the destination
// in one write, as the upstream wrote it: a compressing writer after this
// one decides on its first write whether the body is worth compressing.
// After an error from the destination every call returns that error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	start := 0     // p[start:] is neither passed on nor in w.out yet
	began := false // a value held now began in p, at valStart
	valStart := 0
	for i := 0; i < len(p); {
		i = w.lex(p, i)
		switch w.event {
		case valueStart:
			w.holding, began, valStart = true, true, w.at
		case valueEnd:
			if w.holding {
				start = w.endValue(p, start, valStart, began)
				w.holding = false
			}
		}
		w.event = none
	}
	if w.holding {
		if began {
			w.out = append(w.buffer(), p[start:valStart]...)
			start = valStart
		}
		w.held = append(w.held, p[start:]...)
		start = len(p)
		if len(w.held) > MaxValue {
			// Too long to be a checkout link worth holding for.
			w.out = append(w.buffer(), w.held...)
			w.holding, w.held = false, w.held[:0]
		}
	}
	if w.outp == nil {
		w.emit(p[start:])
	} else {
		w.out = append(w.out, p[start:]...)
		w.emit(w.out)
		w.release()
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// endValue decorates the value that ends at w.at in p, having begun at
// valStart in p or, if not began, in an earlier write (the part held). It
// moves what goes before the end of any insertion to w.out and returns
// where the rest of p, not yet passed on, starts.
func (w *Writer) endValue(p []byte, start, valStart int, began bool) int {
	held := 0
	val := p[valStart:w.at]
	if !began {
		held = len(w.held)
		w.held = append(w.held, p[:w.at]...)
		val = w.held
	}
	at, sep, t := 0, "", (*Target)(nil)
	if len(val) <= MaxValue {
		at, sep, t = w.plan(val)
	}
	switch {
	case held > 0 && (t == nil || at < held):
		// Part of the value was held: it goes before the rest of p.
		if t == nil {
			w.out = append(w.buffer(), w.held[:held]...)
		} else {
			w.out = append(w.buffer(), w.held[:at]...)
			w.out = w.appendParam(w.out, sep, t)
			w.out = append(w.out, w.held[at:held]...)
		}
	case held > 0:
		w.out = append(w.buffer(), w.held[:held]...)
		w.out = append(w.out, p[:at-held]...)
		w.out = w.appendParam(w.out, sep, t)
		start = at - held
	case t != nil:
		w.out = append(w.buffer(), p[start:valStart+at]...)
		w.out = w.appendParam(w.out, sep, t)
		start = valStart + at
	}
	w.held = w.held[:0]
	return start
}

// appendParam appends the separator and t's parameter with the reference.
func (w *Writer) appendParam(dst []byte, sep string, t *Target) []byte {
	dst = append(dst, sep...)
	dst = appendQueryEscaped(dst, t.Param)
	dst = append(dst, '=')
	if t.Encode != nil {
		return appendQueryEscaped(dst, t.Encode(w.ref))
	}
	return appendQueryEscaped(dst, w.ref)
}

// Flush passes on a held unfinished value, undecorated, so that a streamed
// page is never stalled. The caller then flushes the destination.
func (w *Writer) Flush() error {
	if w.holding {
		w.emit(w.held)
		w.holding, w.held = false, w.held[:0]
	}
	return w.err
}

// Close passes on whatever is held. The page ends here; a tag it left
// unfinished passes as it was.
func (w *Writer) Close() error {
	return w.Flush()
}

// emit passes b on unless an earlier write failed.
func (w *Writer) emit(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	_, w.err = w.dst.Write(b)
}

// Interface guards
var _ io.WriteCloser = (*Writer)(nil)
