package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts the transactions a real store commits.
type countingStore struct {
	Store
	updates atomic.Int64
}

func (c *countingStore) Update(fn func(Txn) error) error {
	c.updates.Add(1)
	return c.Store.Update(fn)
}

func TestGroupWriterSharesCommits(t *testing.T) {
	st := &countingStore{Store: openTemp(t)}
	g := NewGroupWriter(st, 0)
	const n = 500
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			key := fmt.Appendf(nil, "s/%04d", i)
			if err := g.Set(key, fmt.Appendf(nil, "v%d", i), time.Hour); err != nil {
				errs <- err
				return
			}
			// Committed when Set returns: readable at once.
			if err := st.View(func(txn Txn) error {
				v, err := txn.Get(key)
				if err == nil && string(v) != fmt.Sprintf("v%d", i) {
					err = fmt.Errorf("value %q", v)
				}
				return err
			}); err != nil {
				errs <- fmt.Errorf("%s after Set: %w", key, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if u := st.updates.Load(); u >= n {
		t.Errorf("%d writes took %d transactions: nothing was grouped", n, u)
	} else {
		t.Logf("%d writes in %d transactions", n, u)
	}
}

// One write the store refuses fails alone; the rest of its group commits.
func TestGroupWriterIsolatesAFailedWrite(t *testing.T) {
	st := openTemp(t)
	g := NewGroupWriter(st, 0)
	var wg sync.WaitGroup
	results := make([]error, 50)
	for i := range results {
		wg.Go(func() {
			key := fmt.Appendf(nil, "s/%02d", i)
			if i == 25 {
				key = nil // Badger refuses an empty key
			}
			results[i] = g.Set(key, []byte("v"), 0)
		})
	}
	wg.Wait()
	for i, err := range results {
		if i == 25 {
			if err == nil {
				t.Error("the empty key was accepted")
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d failed with its neighbour: %v", i, err)
		}
	}
	if err := st.View(func(txn Txn) error {
		_, err := txn.Get([]byte("s/49"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A group never outgrows its byte bound, whatever arrives at once.
func TestGroupWriterBoundsGroupSize(t *testing.T) {
	st := &countingStore{Store: openTemp(t)}
	g := NewGroupWriter(st, 1000)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			if err := g.Set(fmt.Appendf(nil, "k/%03d", i), make([]byte, 400), 0); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d writes failed", failed.Load())
	}
	// At most two 405-byte writes fit in 1000 bytes.
	if u := st.updates.Load(); u < 50 {
		t.Fatalf("100 writes of 405 bytes in %d transactions of at most 1000 bytes", u)
	}
	var count int
	if err := st.View(func(txn Txn) error {
		return txn.Scan([]byte("k/"), nil, func(_, _ []byte) error { count++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if count != 100 {
		t.Fatalf("%d of 100 keys stored", count)
	}
}
