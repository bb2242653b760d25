package detect

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Capture is the capped tee a response writer copies the body into: it keeps
// the first Limit bytes written and counts the rest. Write never fails and
// never makes the held buffer larger than the limit, so a 2 GB download
// through a conversion rule costs at most the limit in memory.
//
// Buffers come from size-class pools and grow by doubling as the body
// arrives, so a small page takes a small buffer. Release returns the buffer;
// the Capture (and any slice from Bytes) must not be used after it. A
// Capture is not safe for concurrent use (a response is written from one
// goroutine).
type Capture struct {
	bp        *[]byte
	limit     int
	total     int64
	dropped   bool // some written bytes were not kept
	budget    *Budget
	exhausted bool // the budget could not cover the bytes to keep
}

// Budget bounds the bytes held by every Capture that shares it: a page
// that finds it spent keeps no more (Exhausted), so that slow clients,
// each holding a copy of a confirmation page, cannot grow memory without
// bound. The zero Budget has no limit.
type Budget struct {
	limit atomic.Int64
	used  atomic.Int64
}

// SetLimit sets the budget's size in bytes (0: no limit).
func (b *Budget) SetLimit(n int64) { b.limit.Store(n) }

// Used returns the bytes held now.
func (b *Budget) Used() int64 { return b.used.Load() }

// take reserves n bytes, or reports that they do not fit.
func (b *Budget) take(n int) bool {
	if b == nil {
		return true
	}
	limit := b.limit.Load()
	if used := b.used.Add(int64(n)); limit > 0 && used > limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *Budget) give(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// Buffer size classes: 4 KB << k for k in [0, numClasses).
const (
	minClassShift = 12 // 4 KB
	numClasses    = 15 // up to 64 MB
)

var classPools [numClasses]sync.Pool

// NewCapture returns a Capture keeping at most limit bytes (none if limit
// is not positive), within budget (nil: none).
func NewCapture(limit int, budget *Budget) *Capture {
	return &Capture{limit: max(limit, 0), budget: budget}
}

// Write keeps what fits under the limit and reports the whole of p as
// written, so the tee never disturbs the response it copies.
func (c *Capture) Write(p []byte) (int, error) { return write(c, p) }

// WriteString is Write for a string, for io.StringWriter.
func (c *Capture) WriteString(s string) (int, error) { return write(c, s) }

func write[T string | []byte](c *Capture, p T) (int, error) {
	n := len(p)
	c.total += int64(n)
	held := c.Len()
	room := c.limit - held
	if n == 0 {
		return 0, nil
	}
	if room <= 0 {
		c.dropped = true
		return n, nil
	}
	if len(p) > room {
		p, c.dropped = p[:room], true
	}
	if c.bp == nil || held+len(p) > cap(*c.bp) {
		if !c.grow(held + len(p)) {
			c.dropped, c.exhausted, c.limit = true, true, held
			return n, nil
		}
	}
	*c.bp = append(*c.bp, p...)
	return n, nil
}

// grow moves the held bytes to a buffer of at least need bytes (need is at
// most the limit): the next size class at or above twice the current size
// when that is within the limit, else exactly the limit. It reports false,
// keeping the old buffer, when the budget cannot cover the new one.
func (c *Capture) grow(need int) bool {
	old := c.bp
	want := need
	oldCap := 0
	if old != nil {
		oldCap = cap(*old)
		want = max(want, 2*oldCap)
	}
	size := c.limit
	if k, s := classFor(want); k >= 0 && s <= c.limit {
		size = s
	}
	if !c.budget.take(size - oldCap) {
		return false
	}
	var nb *[]byte
	if k, size := classFor(want); k >= 0 && size <= c.limit {
		if v, ok := classPools[k].Get().(*[]byte); ok {
			nb = v
		} else {
			b := make([]byte, 0, size)
			nb = &b
		}
	} else {
		b := make([]byte, 0, c.limit)
		nb = &b
	}
	if old != nil {
		*nb = append((*nb)[:0], *old...)
		putBuf(old)
	} else {
		*nb = (*nb)[:0]
	}
	c.bp = nb
	return true
}

// classFor returns the smallest size class holding n bytes, or -1.
func classFor(n int) (int, int) {
	if n <= 1<<minClassShift {
		return 0, 1 << minClassShift
	}
	k := bits.Len(uint(n-1)) - minClassShift
	if k >= numClasses {
		return -1, 0
	}
	return k, 1 << (k + minClassShift)
}

// putBuf returns a buffer to its class pool; buffers of other sizes (an
// exact-limit buffer) are left to the garbage collector.
func putBuf(bp *[]byte) {
	c := cap(*bp)
	if k, size := classFor(c); k >= 0 && size == c {
		*bp = (*bp)[:0]
		classPools[k].Put(bp)
	}
}

// Bytes returns the captured prefix. It is valid until the next Write or
// Release.
func (c *Capture) Bytes() []byte {
	if c.bp == nil {
		return nil
	}
	return *c.bp
}

// Len returns the number of bytes held.
func (c *Capture) Len() int {
	if c.bp == nil {
		return 0
	}
	return len(*c.bp)
}

// Written returns the number of bytes written through the Capture, kept or
// not.
func (c *Capture) Written() int64 { return c.total }

// Truncated reports whether more was written than the limit kept.
func (c *Capture) Truncated() bool { return c.dropped }

// Exhausted reports whether the budget stopped the copy short.
func (c *Capture) Exhausted() bool { return c.exhausted }

// Release returns the buffer to its pool. Writes after Release are counted
// but not kept.
func (c *Capture) Release() {
	if c.bp != nil {
		c.budget.give(cap(*c.bp))
		putBuf(c.bp)
		c.bp = nil
	}
	c.limit = 0
}
