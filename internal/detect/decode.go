package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Decode errors. ErrLimit and ErrShortInput come with data that is usable
// as a prefix of the body (see Partial); the others come with none.
var (
	// ErrLimit: the decoded body is longer than the limit; the data
	// returned is its first limit bytes. A decompression bomb stops here.
	ErrLimit = errors.New("decoded body exceeds limit")
	// ErrShortInput: the compressed body ends early, as it does when the
	// capture cap cut it; the data returned is what it decoded to.
	ErrShortInput = errors.New("compressed body ends early")
	// ErrCorrupt: the compressed body is not valid in its encoding.
	ErrCorrupt = errors.New("corrupt compressed body")
	// ErrUnsupportedEncoding: a content coding Decode does not know.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
)

// Partial reports whether an error from Decode still came with a usable
// prefix of the body (ErrLimit or ErrShortInput).
func Partial(err error) bool {
	return errors.Is(err, ErrLimit) || errors.Is(err, ErrShortInput)
}

// zstdMaxWindow is the largest zstd window accepted: RFC 9659 requires
// HTTP zstd content to fit an 8 MB window, and a frame that asks for more
// would make the decoder allocate it.
const zstdMaxWindow = 8 << 20

// Decode undoes the Content-Encoding of a response body: gzip (x-gzip), br,
// zstd, deflate (zlib-wrapped as the RFC says, or raw deflate as some servers
// send it) and identity. A list such as "gzip, br" was applied left to
// right, so it is undone right to left. The result never exceeds limit
// bytes, which must be positive.
//
// On ErrLimit or ErrShortInput (see Partial) the returned data is the
// decodable prefix; on any other error it is nil. An empty body decodes to
// itself. For identity the body itself is returned, not a copy.
func Decode(body []byte, contentEncoding string, limit int) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("decode: limit %d must be positive", limit)
	}
	var encs []string
	for _, e := range strings.Split(contentEncoding, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if e != "" && e != "identity" {
			encs = append(encs, e)
		}
	}
	data := body
	var partial []error
	for i := len(encs) - 1; i >= 0 && len(data) > 0; i-- {
		out, err := decodeOne(data, encs[i], limit)
		if err != nil && !Partial(err) {
			return nil, fmt.Errorf("decode %s: %w", encs[i], err)
		}
		if err != nil {
			partial = append(partial, fmt.Errorf("decode %s: %w", encs[i], err))
		}
		data = out
	}
	if len(data) > limit {
		data = data[:limit]
		partial = append(partial, fmt.Errorf("decode: %w", ErrLimit))
	}
	return data, errors.Join(partial...)
}

type gzipState struct {
	src bytes.Reader
	r   gzip.Reader
}

type brotliState struct {
	src bytes.Reader
	r   *brotli.Reader
}

type zstdState struct {
	src bytes.Reader
	d   *zstd.Decoder
}

type flateState struct {
	src  bytes.Reader
	zlib io.ReadCloser // implements zlib.Resetter once created
	raw  io.ReadCloser // implements flate.Resetter
}

// Decoders are pooled: a gzip or brotli reader carries tens of kilobytes of
// tables and a zstd decoder more, which a proxy should not allocate per
// response.
var (
	gzipPool   = sync.Pool{New: func() any { return new(gzipState) }}
	brotliPool = sync.Pool{New: func() any { s := new(brotliState); s.r = brotli.NewReader(&s.src); return s }}
	flatePool  = sync.Pool{New: func() any { return new(flateState) }}
	zstdPool   = sync.Pool{New: func() any {
		s := new(zstdState)
		// Concurrency 1 decodes synchronously (no goroutines), so a
		// decoder the pool drops needs no Close.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return nil
		}
		s.d = d
		return s
	}}
)

func decodeOne(data []byte, enc string, limit int) ([]byte, error) {
	switch enc {
	case "gzip", "x-gzip":
		st := gzipPool.Get().(*gzipState)
		defer func() { st.src.Reset(nil); gzipPool.Put(st) }()
		st.src.Reset(data)
		if err := st.r.Reset(&st.src); err != nil {
			return nil, classify(err)
		}
		return readCapped(&st.r, limit, len(data))
	case "br":
		st := brotliPool.Get().(*brotliState)
		defer func() { st.src.Reset(nil); brotliPool.Put(st) }()
		st.src.Reset(data)
		if err := st.r.Reset(&st.src); err != nil {
			return nil, classify(err)
		}
		return readCapped(st.r, limit, len(data))
	case "zstd":
		st, _ := zstdPool.Get().(*zstdState)
		if st == nil {
			return nil, errors.New("zstd decoder unavailable")
		}
		defer func() { _ = st.d.Reset(nil); st.src.Reset(nil); zstdPool.Put(st) }()
		// A bytes.Reader (not a bytes.Buffer) keeps the decoder streaming:
		// given a buffer it would decode everything in one go, past limit.
		st.src.Reset(data)
		if err := st.d.Reset(&st.src); err != nil {
			return nil, classify(err)
		}
		return readCapped(st.d, limit, len(data))
	case "deflate":
		st := flatePool.Get().(*flateState)
		defer func() { st.src.Reset(nil); flatePool.Put(st) }()
		st.src.Reset(data)
		var r io.Reader
		if isZlibHeader(data) {
			if st.zlib == nil {
				z, err := zlib.NewReader(&st.src)
				if err != nil {
					return nil, classify(err)
				}
				st.zlib = z
			} else if err := st.zlib.(zlib.Resetter).Reset(&st.src, nil); err != nil {
				return nil, classify(err)
			}
			r = st.zlib
		} else {
			// Raw deflate without the zlib wrapper, as some servers send
			// "deflate" (and old browsers accepted).
			if st.raw == nil {
				st.raw = flate.NewReader(&st.src)
			} else if err := st.raw.(flate.Resetter).Reset(&st.src, nil); err != nil {
				return nil, classify(err)
			}
			r = st.raw
		}
		return readCapped(r, limit, len(data))
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedEncoding, enc)
}

// isZlibHeader reports whether data starts with a zlib header: compression
// method 8 (deflate), window at most 32 KB, and the check bits that make
// the first two bytes a multiple of 31.
func isZlibHeader(data []byte) bool {
	if len(data) < 2 {
		return false
	}
	cmf, flg := data[0], data[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// classify maps a decoder error to ErrShortInput (input ended early) or
// ErrCorrupt.
func classify(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrShortInput, err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// readCapped reads r to its end or to limit bytes. The buffer starts near
// the expected size (a few times the compressed size) and grows by doubling,
// never past limit.
func readCapped(r io.Reader, limit, compressed int) ([]byte, error) {
	size := min(limit, max(4*compressed, 4096))
	buf := make([]byte, 0, size)
	zeroReads := 0
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				// Full: one more byte tells a body of exactly limit bytes
				// from a longer one.
				var one [1]byte
				_, err := io.ReadFull(r, one[:])
				switch {
				case err == nil:
					return buf, ErrLimit
				case err == io.EOF:
					return buf, nil
				}
				return buf, classify(err)
			}
			next := make([]byte, len(buf), min(limit, 2*cap(buf)))
			copy(next, buf)
			buf = next
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, classify(err)
		case n == 0:
			if zeroReads++; zeroReads > 100 {
				return buf, classify(io.ErrNoProgress)
			}
		}
	}
}
