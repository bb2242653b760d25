package detect

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestCapture(t *testing.T) {
	page := readTestdata(t, "woocommerce-thankyou.html")
	tests := []struct {
		name  string
		limit int
		chunk int
	}{
		{"under the cap", 1 << 20, 4096},
		{"over the cap, power of two", 4096, 1000},
		{"over the cap, odd size", 10000, 333},
		{"single large write", 6000, len(page)},
		{"zero cap", 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCapture(tt.limit, nil)
			defer c.Release()
			for rest := page; len(rest) > 0; {
				k := min(tt.chunk, len(rest))
				n, err := c.Write(rest[:k])
				if n != k || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				if cap(c.Bytes()) > max(tt.limit, 0) {
					t.Fatalf("buffer capacity %d over cap %d", cap(c.Bytes()), tt.limit)
				}
				rest = rest[k:]
			}
			want := page[:min(len(page), tt.limit)]
			if !bytes.Equal(c.Bytes(), want) {
				t.Fatalf("captured %d bytes, want %d", c.Len(), len(want))
			}
			if c.Truncated() != (len(page) > tt.limit) || c.Written() != int64(len(page)) {
				t.Fatalf("truncated %v written %d", c.Truncated(), c.Written())
			}
		})
	}
}

func TestCaptureReuse(t *testing.T) {
	a := NewCapture(1<<16, nil)
	io.Copy(a, strings.NewReader(strings.Repeat("secret ", 3000)))
	a.Release()
	a.Write([]byte("after release"))
	if a.Len() != 0 || !a.Truncated() {
		t.Fatal("a released capture kept bytes")
	}
	// A buffer coming back from the pool must not show the previous body.
	b := NewCapture(1<<16, nil)
	defer b.Release()
	io.WriteString(b, "new")
	if string(b.Bytes()) != "new" {
		t.Fatalf("got %q", b.Bytes())
	}
	if b.Truncated() {
		t.Fatal("truncated without going over the cap")
	}
}

func TestClassFor(t *testing.T) {
	tests := []struct{ n, k, size int }{
		{0, 0, 4096}, {4096, 0, 4096}, {4097, 1, 8192}, {1 << 20, 8, 1 << 20}, {64 << 20, 14, 64 << 20}, {64<<20 + 1, -1, 0},
	}
	for _, tt := range tests {
		if k, size := classFor(tt.n); k != tt.k || size != tt.size {
			t.Errorf("classFor(%d) = %d, %d; want %d, %d", tt.n, k, size, tt.k, tt.size)
		}
	}
}

// TestCaptureBudget: captures sharing a budget hold no more than it,
// together; one that finds it spent stops keeping and says so, and
// releasing gives the bytes back.
func TestCaptureBudget(t *testing.T) {
	var b Budget
	b.SetLimit(100 << 10)
	page := make([]byte, 40<<10)
	var caps []*Capture
	exhausted := 0
	for range 10 {
		c := NewCapture(1<<20, &b)
		_, _ = c.Write(page)
		if c.Exhausted() {
			exhausted++
			if !c.Truncated() {
				t.Fatal("an exhausted capture does not say it was truncated")
			}
		}
		caps = append(caps, c)
		if b.Used() > 100<<10 {
			t.Fatalf("budget of 100 KiB holds %d bytes", b.Used())
		}
	}
	if exhausted == 0 || exhausted == 10 {
		t.Fatalf("%d of 10 captures exhausted a budget that fits some", exhausted)
	}
	for _, c := range caps {
		c.Release()
	}
	if b.Used() != 0 {
		t.Fatalf("%d bytes still held after every release", b.Used())
	}
	c := NewCapture(1<<20, &b)
	_, _ = c.Write(page)
	if c.Exhausted() || c.Len() != len(page) {
		t.Fatal("the budget was not given back")
	}
	c.Release()
}
