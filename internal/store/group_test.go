package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// kv is an item of the test groups: one record to write.
type kv struct{ key, value []byte }

// writeAll commits a group of records in one transaction of st, counting
// the transactions.
func writeAll(st Store, txns *atomic.Int64) func([]kv) []error {
	return func(items []kv) []error {
		txns.Add(1)
		err := st.Update(func(txn Txn) error {
			for _, it := range items {
				if err := txn.Set(it.key, it.value, 0); err != nil {
					return err
				}
			}
			return nil
		})
		errs := make([]error, len(items))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
}

func kvSize(it kv) int { return len(it.key) + len(it.value) }

func TestGroupSharesCommits(t *testing.T) {
	st := openTemp(t)
	var txns atomic.Int64
	g := NewGroup(writeAll(st, &txns), kvSize, 0)
	const n = 500
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			key := fmt.Appendf(nil, "s/%04d", i)
			if err := g.Do(kv{key, fmt.Appendf(nil, "v%d", i)}); err != nil {
				errs <- err
				return
			}
			// Committed when Do returns: readable at once.
			if err := st.View(func(txn Txn) error {
				v, err := txn.Get(key)
				if err == nil && string(v) != fmt.Sprintf("v%d", i) {
					err = fmt.Errorf("value %q", v)
				}
				return err
			}); err != nil {
				errs <- fmt.Errorf("%s after Do: %w", key, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if u := txns.Load(); u >= n {
		t.Errorf("%d items took %d commits: nothing was grouped", n, u)
	} else {
		t.Logf("%d items in %d commits", n, u)
	}
}

// Each caller gets its own item's result, whatever its neighbours'.
func TestGroupReportsEachItemsError(t *testing.T) {
	bad := errors.New("refused")
	g := NewGroup(func(items []int) []error {
		errs := make([]error, len(items))
		for i, it := range items {
			if it%7 == 0 {
				errs[i] = fmt.Errorf("item %d: %w", it, bad)
			}
		}
		return errs
	}, func(int) int { return 1 }, 0)
	var wg sync.WaitGroup
	results := make([]error, 200)
	for i := range results {
		wg.Go(func() { results[i] = g.Do(i) })
	}
	wg.Wait()
	for i, err := range results {
		if want := i%7 == 0; want != errors.Is(err, bad) || (!want && err != nil) {
			t.Errorf("item %d: err = %v", i, err)
		} else if want && err.Error() != fmt.Sprintf("item %d: refused", i) {
			t.Errorf("item %d got another item's error: %v", i, err)
		}
	}
}

// A group never outgrows its byte bound, whatever arrives at once.
func TestGroupBoundsGroupSize(t *testing.T) {
	st := openTemp(t)
	var txns atomic.Int64
	var largest atomic.Int64
	write := writeAll(st, &txns)
	g := NewGroup(func(items []kv) []error {
		size := 0
		for _, it := range items {
			size += kvSize(it)
		}
		if int64(size) > largest.Load() {
			largest.Store(int64(size))
		}
		return write(items)
	}, kvSize, 1000)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			if err := g.Do(kv{fmt.Appendf(nil, "k/%03d", i), make([]byte, 400)}); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d items failed", failed.Load())
	}
	// At most two 405-byte items fit in 1000 bytes.
	if l := largest.Load(); l > 1000 {
		t.Fatalf("a group of %d bytes, bound 1000", l)
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
