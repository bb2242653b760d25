package decorate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

var (
	// ErrUnsupportedEncoding is returned by NewDecodingWriter for a
	// content coding it cannot decode; the caller passes such a body on
	// unchanged.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrCorruptBody wraps the errors of a compressed body that does not
	// decode: corrupt, cut short, or followed by more data. An error that
	// does not wrap it is the destination's.
	ErrCorruptBody = errors.New("compressed body does not decode")
)

// zstdMaxWindow is the largest zstd window accepted: RFC 9659 requires HTTP
// zstd content to fit an 8 MB window.
const zstdMaxWindow = 8 << 20

// DecodingWriter decorates a compressed HTML page: it decodes the bytes
// written to it as they arrive, decorates the page and passes it on
// uncompressed. It is the fallback for an upstream that compresses although
// asked not to.
//
// The decoders read; a goroutine runs them. Write hands the bytes over and
// returns once the goroutine has decoded, decorated and passed on all it
// can and waits for more, so the destination is never written to while
// Write, Flush or Close is not running, and a flush from upstream reaches
// the client.
type DecodingWriter struct {
	page *Writer
	feed *feed
	in   chan []byte   // compressed bytes, to the goroutine
	want chan struct{} // the goroutine has used all it was given and waits for more
	done chan struct{} // closed when the goroutine has ended, err set
	err  error

	waiting bool // want was received: the goroutine is blocked reading in
	written bool // some body was written
	closed  bool
}

// NewDecodingWriter returns a writer that undoes contentEncoding (gzip,
// x-gzip, deflate, br, zstd or identity, or a list of them as in the
// Content-Encoding header) and decorates the page as NewWriter does. An
// encoding it cannot decode is ErrUnsupportedEncoding, before anything is
// started.
//
// A corrupt or truncated body is passed on as far as it decodes; the error
// is returned by the Write or Close that finds it, and every later call.
// The caller must call Close, which ends the goroutine.
func NewDecodingWriter(dst io.Writer, contentEncoding string, targets []Target, ref string) (*DecodingWriter, error) {
	var encodings []string
	for _, e := range strings.Split(contentEncoding, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch e {
		case "", "identity":
		case "gzip", "x-gzip", "deflate", "br", "zstd":
			encodings = append(encodings, e)
		default:
			return nil, fmt.Errorf("decorate: %w %q", ErrUnsupportedEncoding, e)
		}
	}
	d := &DecodingWriter{
		page: NewWriter(dst, targets, ref),
		in:   make(chan []byte),
		want: make(chan struct{}),
		done: make(chan struct{}),
	}
	d.feed = &feed{d: d}
	go d.run(encodings)
	return d, nil
}

// run decodes what Write hands over and writes it to the page writer, until
// the compressed stream ends, fails, or Close says there is no more.
func (d *DecodingWriter) run(encodings []string) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decorate: %w: the decoder failed: %v", ErrCorruptBody, p)
		}
		d.err = err
		close(d.done)
	}()
	var r io.Reader = d.feed
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	// A list was applied left to right, so it is undone right to left.
	for i := len(encodings) - 1; i >= 0; i-- {
		var c io.Closer
		r, c, err = decoder(encodings[i], r)
		if err != nil {
			err = fmt.Errorf("decorate: %w: %s: %w", ErrCorruptBody, encodings[i], err)
			return
		}
		if c != nil {
			closers = append(closers, c)
		}
	}
	if _, err = io.Copy(writerOnly{d.page}, r); err != nil && d.page.err == nil {
		err = fmt.Errorf("decorate: %w: %s: %w", ErrCorruptBody, strings.Join(encodings, ", "), err)
	}
}

// writerOnly hides any ReadFrom, so that io.Copy writes the decoded page in
// the pieces the decoder returns.
type writerOnly struct{ io.Writer }

// decoder returns a reader that decodes encoding from r, and what to close
// after it.
func decoder(encoding string, r io.Reader) (io.Reader, io.Closer, error) {
	switch encoding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		return zr, zr, err
	case "br":
		return brotli.NewReader(r), nil, nil
	case "zstd":
		zr, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, closerFunc(zr.Close), nil
	default: // deflate: zlib-wrapped as the RFC says, or raw as some servers send it
		br := bufio.NewReader(r)
		head, err := br.Peek(2)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if isZlibHeader(head) {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, err
			}
			return zr, zr, nil
		}
		fr := flate.NewReader(br)
		return fr, fr, nil
	}
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// isZlibHeader reports whether b starts with a zlib header: method 8
// (deflate), a window of at most 32 KB, and check bits that make the first
// two bytes a multiple of 31.
func isZlibHeader(b []byte) bool {
	cmf, flg := b[0], b[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// feed is the goroutine's end of the hand-over: it reads what Write gives.
type feed struct {
	d   *DecodingWriter
	cur []byte // given and not yet read
	eof bool
}

func (f *feed) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.eof {
			return 0, io.EOF
		}
		f.d.want <- struct{}{}
		b, ok := <-f.d.in
		if !ok {
			f.eof = true
			return 0, io.EOF
		}
		f.cur = b
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// await waits until the goroutine wants more input or has ended, and
// reports whether it wants more.
func (d *DecodingWriter) await() bool {
	if d.waiting {
		return true
	}
	select {
	case <-d.want:
		d.waiting = true
		return true
	case <-d.done:
		return false
	}
}

// Write decodes p, decorates and passes on what it decodes to, and returns
// once all of p is used. A decoding error is returned as it is found.
func (d *DecodingWriter) Write(p []byte) (int, error) {
	if d.closed {
		return 0, errors.New("decorate: write after close")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !d.await() {
		return 0, d.ended(p)
	}
	d.waiting, d.written = false, true
	d.in <- p
	if !d.await() {
		// The stream ended: with p, or before all of it was read.
		return 0, d.ended(d.feed.cur)
	}
	return len(p), nil
}

// ended is the error of a goroutine that has stopped, given the bytes
// that it left unread.
func (d *DecodingWriter) ended(unread []byte) error {
	if d.err != nil {
		return d.err
	}
	if len(unread) > 0 {
		return fmt.Errorf("decorate: %w: data after its end", ErrCorruptBody)
	}
	return nil
}

// Flush passes on the page writer's held bytes (see Writer.Flush). What
// upstream flushed has been decoded and passed on already, as far as the
// compressed stream allows.
func (d *DecodingWriter) Flush() error {
	if d.closed {
		return d.err
	}
	if !d.await() {
		if d.err != nil {
			return d.err
		}
	}
	return d.page.Flush()
}

// Close tells the decoder the body is complete, waits for the goroutine to
// end and passes on what is held. It returns the decoding error, if any:
// io.ErrUnexpectedEOF, wrapped, for a body cut short. An empty body (a
// response to HEAD) is no error.
func (d *DecodingWriter) Close() error {
	if d.closed {
		return d.err
	}
	d.closed = true
	if d.await() {
		close(d.in)
	}
	<-d.done
	if !d.written {
		d.err = nil
	}
	if err := d.page.Close(); err != nil && d.err == nil {
		d.err = err
	}
	return d.err
}

// Interface guards
var (
	_ io.WriteCloser = (*DecodingWriter)(nil)
	_ io.Reader      = (*feed)(nil)
)
