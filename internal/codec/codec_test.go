package codec

import (
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(7, 0)
	w.Uint(0)
	w.Uint(math.MaxUint64)
	w.Int(-1 << 62)
	w.Int(1771000000123456789)
	w.Bool(true)
	w.Bool(false)
	w.Float(12.5)
	w.String("")
	w.String("héllo")
	w.Bytes([]byte{0, 1, 2})
	w.Bytes(nil)

	r := NewReader(w.Data(), 7)
	if v := r.Uint(); v != 0 {
		t.Errorf("Uint = %d", v)
	}
	if v := r.Uint(); v != math.MaxUint64 {
		t.Errorf("Uint = %d", v)
	}
	if v := r.Int(); v != -1<<62 {
		t.Errorf("Int = %d", v)
	}
	if v := r.Int(); v != 1771000000123456789 {
		t.Errorf("Int = %d", v)
	}
	if !r.Bool() || r.Bool() {
		t.Error("Bool round trip failed")
	}
	if v := r.Float(); v != 12.5 {
		t.Errorf("Float = %v", v)
	}
	if v := r.String(); v != "" {
		t.Errorf("String = %q", v)
	}
	if v := r.String(); v != "héllo" {
		t.Errorf("String = %q", v)
	}
	if v := r.Bytes(); string(v) != "\x00\x01\x02" {
		t.Errorf("Bytes = %q", v)
	}
	if v := r.Bytes(); v != nil {
		t.Errorf("Bytes = %q, want nil", v)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestCorrupt(t *testing.T) {
	w := NewWriter(1, 0)
	w.String("abcdef")
	w.Uint(3)
	good := w.Data()

	tests := []struct {
		name string
		data []byte
		read func(r *Reader)
	}{
		{"wrong format", append([]byte{2}, good[1:]...), func(r *Reader) { _ = r.String() }},
		{"empty", nil, func(r *Reader) {}},
		{"JSON", []byte(`{"a":1}`), func(r *Reader) {}},
		{"truncated string", good[:4], func(r *Reader) { _ = r.String() }},
		{"truncated varint", []byte{1, 0x80}, func(r *Reader) { r.Uint() }},
		{"trailing bytes", append(append([]byte(nil), good...), 9), func(r *Reader) { _ = r.String(); r.Uint() }},
		{"count beyond the record", []byte{1, 200, 1}, func(r *Reader) { r.Count(1) }},
		{"bad bool", []byte{1, 2}, func(r *Reader) { r.Bool() }},
		{"short float", []byte{1, 0, 0}, func(r *Reader) { r.Float() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.data, 1)
			tt.read(r)
			if err := r.Done(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Done() = %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzReader feeds arbitrary records to a reader: it must report an error
// or succeed, never panic or allocate beyond the input.
func FuzzReader(f *testing.F) {
	w := NewWriter(1, 0)
	w.String("click")
	w.Int(-5)
	w.Uint(2)
	w.Bool(true)
	w.Float(1.5)
	f.Add(w.Data())
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b, 1)
		_ = r.String()
		_ = r.Int()
		for range r.Count(1) {
			_ = r.Bytes()
		}
		_ = r.Bool()
		_ = r.Float()
		_ = r.Done()
	})
}
