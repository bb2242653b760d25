package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSyncGroupSharesFlushes(t *testing.T) {
	g := newSyncGroup()
	var flushes atomic.Int64
	var inFlight atomic.Int64
	flush := func() error {
		if inFlight.Add(1) > 1 {
			t.Error("two flushes ran at once")
		}
		time.Sleep(2 * time.Millisecond)
		flushes.Add(1)
		inFlight.Add(-1)
		return nil
	}
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Do(flush); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := flushes.Load(); n == 0 || n >= 200 {
		t.Fatalf("%d flushes for 200 callers", n)
	}
}

func TestSyncGroupWaitsForALaterFlush(t *testing.T) {
	g := newSyncGroup()
	release := make(chan struct{})
	var calls atomic.Int64
	go func() {
		_ = g.Do(func() error { calls.Add(1); <-release; return nil })
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// This caller arrives while a flush runs: it must get a flush of its
	// own, which reports its own error.
	done := make(chan error)
	go func() { done <- g.Do(func() error { calls.Add(1); return errors.New("disk full") }) }()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-done; err == nil || calls.Load() != 2 {
		t.Fatalf("err %v after %d flushes: the second caller rode on a flush that began before it", err, calls.Load())
	}
}
