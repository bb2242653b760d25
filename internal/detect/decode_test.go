package detect

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// encoders compress with each supported content coding.
var encoders = map[string]func(w io.Writer) io.WriteCloser{
	"gzip": func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
	"br":   func(w io.Writer) io.WriteCloser { return brotli.NewWriterLevel(w, 5) },
	"zstd": func(w io.Writer) io.WriteCloser {
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic(err)
		}
		return z
	},
	"deflate": func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
	"raw-deflate": func(w io.Writer) io.WriteCloser {
		f, err := flate.NewWriter(w, flate.DefaultCompression)
		if err != nil {
			panic(err)
		}
		return f
	},
}

func compress(t testing.TB, enc string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := encoders[enc](&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compressZeros compresses n zero bytes without holding them in memory.
func compressZeros(t testing.TB, enc string, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := encoders[enc](&b)
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		if _, err := w.Write(zeros[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeRoundTrip(t *testing.T) {
	page := readTestdata(t, "woocommerce-thankyou.html")
	tests := []struct {
		header string
		encode func() []byte
	}{
		{"gzip", func() []byte { return compress(t, "gzip", page) }},
		{"x-gzip", func() []byte { return compress(t, "gzip", page) }},
		{"GZIP", func() []byte { return compress(t, "gzip", page) }},
		{"br", func() []byte { return compress(t, "br", page) }},
		{"zstd", func() []byte { return compress(t, "zstd", page) }},
		{"deflate", func() []byte { return compress(t, "deflate", page) }},
		{"deflate", func() []byte { return compress(t, "raw-deflate", page) }},
		{"", func() []byte { return page }},
		{"identity", func() []byte { return page }},
		{"gzip, br", func() []byte { return compress(t, "br", compress(t, "gzip", page)) }},
		{"deflate,identity,zstd", func() []byte { return compress(t, "zstd", compress(t, "deflate", page)) }},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, err := Decode(tt.encode(), tt.header, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, page) {
				t.Fatalf("decoded %d bytes, want %d", len(got), len(page))
			}
		})
	}
}

func TestDecodeLimit(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		enc  string
		size int
	}{
		// 100 MB of zeros is about 100 KB of gzip: a classic bomb.
		{"gzip", 100 << 20},
		{"br", 50 << 20},
		{"zstd", 50 << 20},
		{"deflate", 50 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.enc, func(t *testing.T) {
			bomb := compressZeros(t, tt.enc, tt.size)
			got, err := Decode(bomb, tt.enc, limit)
			if !errors.Is(err, ErrLimit) || !Partial(err) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			if len(got) != limit || cap(got) > limit {
				t.Fatalf("len %d cap %d, want %d", len(got), cap(got), limit)
			}
			if bytes.IndexFunc(got, func(r rune) bool { return r != 0 }) >= 0 {
				t.Fatal("prefix is not the decoded zeros")
			}
		})
	}
	t.Run("exactly the limit is not over it", func(t *testing.T) {
		data := bytes.Repeat([]byte("a"), 5000)
		got, err := Decode(compress(t, "gzip", data), "gzip", 5000)
		if err != nil || len(got) != 5000 {
			t.Fatalf("len %d err %v", len(got), err)
		}
	})
	t.Run("identity over the limit", func(t *testing.T) {
		got, err := Decode([]byte("0123456789"), "", 4)
		if !errors.Is(err, ErrLimit) || string(got) != "0123" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("limit must be positive", func(t *testing.T) {
		if _, err := Decode([]byte("x"), "", 0); err == nil {
			t.Fatal("no error")
		}
	})
}

// noisyText returns n bytes of deterministic, poorly compressible text.
func noisyText(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return b
}

func TestDecodeTruncated(t *testing.T) {
	for _, enc := range []string{"gzip", "br", "zstd", "deflate", "raw-deflate"} {
		t.Run(enc, func(t *testing.T) {
			header := enc
			if enc == "raw-deflate" {
				header = "deflate"
			}
			// Zstd and brotli emit output in blocks of up to 128 KB; a
			// body of several poorly compressible blocks leaves something
			// decodable before the cut.
			data := noisyText(512 << 10)
			z := compress(t, enc, data)
			got, err := Decode(z[:len(z)*3/4], header, 4<<20)
			if !errors.Is(err, ErrShortInput) || !Partial(err) {
				t.Fatalf("err = %v, want ErrShortInput", err)
			}
			if len(got) == 0 || !bytes.HasPrefix(data, got) {
				t.Fatalf("got %d bytes, not a non-empty prefix", len(got))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	gz := compress(t, "gzip", []byte("hello, world, hello, world"))
	corrupt := append([]byte(nil), gz...)
	for i := 10; i < len(corrupt)-8; i++ {
		corrupt[i] ^= 0xff
	}
	badCRC := append([]byte(nil), gz...)
	badCRC[len(badCRC)-8] ^= 0xff
	tests := []struct {
		name, enc string
		body      []byte
		want      error
	}{
		{"not gzip at all", "gzip", []byte("<html>plain</html>"), ErrCorrupt},
		{"corrupt deflate stream", "gzip", corrupt, ErrCorrupt},
		{"bad checksum", "gzip", badCRC, ErrCorrupt},
		{"corrupt brotli", "br", []byte("\xff\xff\xff\xff not brotli"), ErrCorrupt},
		{"corrupt zstd", "zstd", []byte("\x28\xb5\x2f\xfd\xff\xff\xff\xff\xff\xff garbage"), ErrCorrupt},
		{"unsupported", "compress", []byte("x"), ErrUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.body, tt.enc, 1<<20)
			if !errors.Is(err, tt.want) || Partial(err) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Fatalf("data %q with a failing error", got)
			}
		})
	}
	t.Run("empty body", func(t *testing.T) {
		got, err := Decode(nil, "gzip", 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("%q %v", got, err)
		}
	})
}

// FuzzDecode decodes arbitrary bytes under each coding: never a panic,
// never more than the limit, never data with a hard error.
func FuzzDecode(f *testing.F) {
	page := readTestdata(f, "gtag-purchase.html")
	for _, enc := range []string{"gzip", "br", "zstd", "deflate"} {
		z := compress(f, enc, page)
		f.Add(z, enc)
		f.Add(z[:len(z)/2], enc)
	}
	f.Add([]byte("plain"), "")
	f.Add(compress(f, "br", compress(f, "gzip", page)), "gzip, br")
	f.Fuzz(func(t *testing.T, body []byte, enc string) {
		const limit = 64 << 10
		got, err := Decode(body, enc, limit)
		if len(got) > limit {
			t.Fatalf("%d bytes over limit", len(got))
		}
		if err != nil && !Partial(err) && got != nil {
			t.Fatalf("data with hard error %v", err)
		}
	})
}
