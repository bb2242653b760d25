package decorate

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// flushWriter is a compressing writer whose Flush ends a block, so that
// what was written so far can be decoded.
type flushWriter interface {
	io.WriteCloser
	Flush() error
}

// compressor returns a writer of encoding into dst.
func compressor(t testing.TB, encoding string, dst io.Writer) flushWriter {
	t.Helper()
	switch encoding {
	case "gzip":
		return gzip.NewWriter(dst)
	case "deflate":
		return zlib.NewWriter(dst)
	case "raw-deflate":
		w, _ := flate.NewWriter(dst, flate.DefaultCompression)
		return w
	case "br":
		return brotli.NewWriter(dst)
	case "zstd":
		w, err := zstd.NewWriter(dst)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	t.Fatalf("no compressor for %s", encoding)
	return nil
}

func compress(t testing.TB, encoding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range strings.Split(encoding, ", ") {
		buf.Reset()
		w := compressor(t, e, &buf)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(buf.Bytes())
	}
	return b
}

// headerName is the Content-Encoding for a test encoding.
func headerName(encoding string) string {
	if encoding == "raw-deflate" {
		return "deflate"
	}
	return encoding
}

// decodeInPieces runs body through a DecodingWriter in pieces of size n
// and returns what came out and the first error.
func decodeInPieces(t *testing.T, encoding string, body []byte, n int) (string, error) {
	t.Helper()
	var out bytes.Buffer
	d, err := NewDecodingWriter(&out, encoding, testTargets, testRef)
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for rest := body; len(rest) > 0 && first == nil; {
		k := min(n, len(rest))
		_, first = d.Write(rest[:k])
		rest = rest[k:]
	}
	if err := d.Close(); first == nil {
		first = err
	}
	return out.String(), first
}

func TestDecodingWriter(t *testing.T) {
	page, _ := testPage()
	want := decorateString(t, page)
	for _, enc := range []string{"gzip", "deflate", "raw-deflate", "br", "zstd", "gzip, br"} {
		body := compress(t, enc, []byte(page))
		for _, n := range []int{1, 7, 512, len(body)} {
			got, err := decodeInPieces(t, headerName(enc), body, n)
			if err != nil {
				t.Fatalf("%s in pieces of %d: %v", enc, n, err)
			}
			if got != want {
				t.Fatalf("%s in pieces of %d: the page differs from the one decorated uncompressed", enc, n)
			}
		}
	}
	// identity, or an x-gzip alias, decode too.
	if got, err := decodeInPieces(t, "identity", []byte(page), 100); err != nil || got != want {
		t.Fatalf("identity: %v", err)
	}
	if got, err := decodeInPieces(t, "X-Gzip", compress(t, "gzip", []byte(page)), 100); err != nil || got != want {
		t.Fatalf("x-gzip: %v", err)
	}
}

// TestDecodingWriterStreams: what an upstream flushed reaches the
// destination before the rest of the page is written.
func TestDecodingWriterStreams(t *testing.T) {
	first := `<html><body><h1>Notebooks</h1><a href="https://buy.stripe.com/a">Buy</a>`
	second := `<p>more</p><a href="https://buy.stripe.com/b">Buy</a></body></html>`
	for _, enc := range []string{"gzip", "deflate", "raw-deflate", "br", "zstd"} {
		var compressed, out bytes.Buffer
		cw := compressor(t, enc, &compressed)
		d, err := NewDecodingWriter(&out, headerName(enc), testTargets, testRef)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(cw, first)
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Write(compressed.Bytes()); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if err := d.Flush(); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if got, want := out.String(), decorateString(t, first); got != want {
			t.Fatalf("%s: after a flush the client has\n%q\nwant\n%q", enc, got, want)
		}
		compressed.Reset()
		_, _ = io.WriteString(cw, second)
		_ = cw.Close()
		if _, err := d.Write(compressed.Bytes()); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if got, want := out.String(), decorateString(t, first+second); got != want {
			t.Fatalf("%s: the whole page\n%q\nwant\n%q", enc, got, want)
		}
	}
}

// TestDecodingWriterBadBodies: a corrupt or truncated body is passed on as
// far as it decodes, and the error is reported; nothing hangs.
func TestDecodingWriterBadBodies(t *testing.T) {
	page, _ := testPage()
	want := decorateString(t, page)
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		body := compress(t, enc, []byte(page))
		corrupt := bytes.Clone(body)
		for i := len(corrupt) / 2; i < len(corrupt)/2+16; i++ {
			corrupt[i] ^= 0x5a
		}
		cases := map[string][]byte{
			"truncated": body[:len(body)/2],
			"corrupt":   corrupt,
			"garbage":   []byte("this is not compressed at all, not even a little bit"),
		}
		if enc == "gzip" || enc == "zstd" {
			cases["trailing garbage"] = append(bytes.Clone(body), "<html>garbage"...)
		}
		for name, b := range cases {
			for _, n := range []int{1, 100, len(b)} {
				got, err := decodeInPieces(t, enc, b, n)
				if !errors.Is(err, ErrCorruptBody) {
					t.Errorf("%s %s in pieces of %d: %v, want ErrCorruptBody", enc, name, n, err)
				}
				// A corrupt stream may decode to wrong bytes before its
				// checksum tells: the client's decoder would do the same.
				if name != "corrupt" && !strings.HasPrefix(want, got) {
					t.Errorf("%s %s in pieces of %d: passed on something that is not the page's start", enc, name, n)
				}
			}
		}
		if _, err := decodeInPieces(t, enc, body[:len(body)/2], 100); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s truncated: %v, want io.ErrUnexpectedEOF", enc, err)
		}
	}
}

func TestDecodingWriterEdges(t *testing.T) {
	if _, err := NewDecodingWriter(io.Discard, "gzip, compress", testTargets, testRef); !errors.Is(err, ErrUnsupportedEncoding) {
		t.Fatalf("compress: %v, want ErrUnsupportedEncoding", err)
	}
	// A response with no body (to HEAD) is no error.
	d, err := NewDecodingWriter(io.Discard, "gzip", testTargets, testRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("Flush before any body: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("an empty body: %v", err)
	}
	if _, err := d.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close: no error")
	}
	// A destination that fails stops the decoding with its error.
	d, _ = NewDecodingWriter(&failingWriter{n: 10}, "gzip", testTargets, testRef)
	page, _ := testPage()
	_, werr := d.Write(compress(t, "gzip", []byte(page)))
	if cerr := d.Close(); !errors.Is(werr, errTest) && !errors.Is(cerr, errTest) {
		t.Fatalf("a failing destination: %v, %v", werr, cerr)
	}
}

// TestDecodingWriterConcurrent runs many at once, for the race detector.
func TestDecodingWriterConcurrent(t *testing.T) {
	page, _ := testPage()
	want := decorateString(t, page)
	body := compress(t, "gzip", []byte(page))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var out bytes.Buffer
			d, _ := NewDecodingWriter(&out, "gzip", testTargets, testRef)
			for rest := body; len(rest) > 0; rest = rest[min(300, len(rest)):] {
				_, _ = d.Write(rest[:min(300, len(rest))])
				_ = d.Flush()
			}
			if err := d.Close(); err != nil || out.String() != want {
				t.Errorf("concurrent decoding: %v", err)
			}
		})
	}
	wg.Wait()
}
