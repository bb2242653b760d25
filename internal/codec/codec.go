// Package codec is the compact binary form of the records written on hot
// paths (sessions on every captured click, deliveries several times each):
// a format byte, then fields in a fixed order as varints and
// length-prefixed bytes. It is a fraction of the records' JSON in size and
// in encoding time. A record's first byte tells its form, and no binary
// format byte is '{', so records written as JSON by earlier versions are
// still read.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is returned for a record that ends early, has a bad length or
// count, or carries bytes after its last field.
var ErrCorrupt = errors.New("corrupt record")

// Writer appends fields to a record.
type Writer struct{ buf []byte }

// NewWriter starts a record with its format byte; size is a capacity hint.
func NewWriter(format byte, size int) *Writer {
	w := &Writer{buf: make([]byte, 1, max(size, 16))}
	w.buf[0] = format
	return w
}

// Uint appends an unsigned varint.
func (w *Writer) Uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Int appends a signed (zig-zag) varint.
func (w *Writer) Int(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Bool appends one byte, 0 or 1.
func (w *Writer) Bool(v bool) {
	var b byte
	if v {
		b = 1
	}
	w.buf = append(w.buf, b)
}

// Float appends the 8 bytes of a float64.
func (w *Writer) Float(v float64) {
	w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(v))
}

// String appends a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Bytes appends a length-prefixed byte slice.
func (w *Writer) Bytes(b []byte) {
	w.Uint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// Data returns the record.
func (w *Writer) Data() []byte { return w.buf }

// Reader reads a record's fields in the order they were written. The first
// error sticks: later reads return zero values, and Done reports it.
type Reader struct {
	b   []byte
	err error
}

// NewReader starts reading a record whose format byte must be format.
func NewReader(b []byte, format byte) *Reader {
	if len(b) == 0 || b[0] != format {
		return &Reader{err: notFormat(format)}
	}
	return &Reader{b: b[1:]}
}

// notFormat is apart so that NewReader inlines and its Reader can live on
// the caller's stack.
func notFormat(format byte) error { return fmt.Errorf("%w: not format %q", ErrCorrupt, format) }

func (r *Reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	r.b = nil
}

// Uint reads an unsigned varint.
func (r *Reader) Uint() uint64 { return readVarint(r, binary.Uvarint) }

// Int reads a signed varint.
func (r *Reader) Int() int64 { return readVarint(r, binary.Varint) }

func readVarint[T uint64 | int64](r *Reader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bool reads one byte, which must be 0 or 1.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail("bool")
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// Float reads the 8 bytes of a float64.
func (r *Reader) Float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *Reader) next(what string) []byte {
	n := r.Uint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what + " length")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.next("string")) }

// Bytes reads a length-prefixed byte slice (a copy; nil when empty).
func (r *Reader) Bytes() []byte {
	v := r.next("bytes")
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// Count reads the length of a list whose items take at least minItem bytes
// each; a count the rest of the record cannot hold is an error, so a
// corrupt record never makes a reader allocate a huge slice.
func (r *Reader) Count(minItem int) int {
	n := r.Uint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/max(minItem, 1)) {
		r.fail("count")
		return 0
	}
	return int(n)
}

// Done returns the first error, or ErrCorrupt if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last field", ErrCorrupt, len(r.b))
	}
	return r.err
}
