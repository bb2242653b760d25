package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"
)

func openTemp(t *testing.T) *Badger {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSetGetDeleteAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(txn Txn) error { return txn.Set([]byte("a"), []byte("1"), 0) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []byte
	if err := s.View(func(txn Txn) error {
		var err error
		got, err = txn.Get([]byte("a"))
		return err
	}); err != nil || string(got) != "1" {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
	if err := s.Update(func(txn Txn) error { return txn.Delete([]byte("a")) }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(txn Txn) error { _, err := txn.Get([]byte("a")); return err })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
}

func TestExpiryIsCheckedOnRead(t *testing.T) {
	s := openTemp(t)
	base := time.Now()
	now = func() time.Time { return base }
	t.Cleanup(func() { now = time.Now })
	if err := s.Update(func(txn Txn) error { return txn.Set([]byte("k"), []byte("v"), time.Hour) }); err != nil {
		t.Fatal(err)
	}
	get := func() error {
		return s.View(func(txn Txn) error { _, err := txn.Get([]byte("k")); return err })
	}
	if err := get(); err != nil {
		t.Fatalf("live key: %v", err)
	}
	// Badger's own TTL has not passed in real time, but the stored
	// expires_at has: the read must treat the key as gone.
	now = func() time.Time { return base.Add(2 * time.Hour) }
	if err := get(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired key: %v, want ErrNotFound", err)
	}
	n := 0
	_ = s.View(func(txn Txn) error {
		return txn.Scan([]byte("k"), nil, func(_, _ []byte) error { n++; return nil })
	})
	if n != 0 {
		t.Fatalf("scan returned %d expired keys", n)
	}
}

func TestScanOrderAndStop(t *testing.T) {
	s := openTemp(t)
	if err := s.Update(func(txn Txn) error {
		for _, k := range []string{"p/3", "p/1", "p/2", "q/1"} {
			if err := txn.Set([]byte(k), []byte(k), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var fwd, rev []string
	_ = s.View(func(txn Txn) error {
		_ = txn.Scan([]byte("p/"), []byte("p/2"), func(k, _ []byte) error { fwd = append(fwd, string(k)); return nil })
		return txn.ScanReverse([]byte("p/"), func(k, _ []byte) error {
			rev = append(rev, string(k))
			if len(rev) == 2 {
				return ErrStop
			}
			return nil
		})
	})
	if strings.Join(fwd, ",") != "p/2,p/3" {
		t.Errorf("forward from p/2 = %v", fwd)
	}
	if strings.Join(rev, ",") != "p/3,p/2" {
		t.Errorf("reverse with stop = %v", rev)
	}
}

func TestSecondOpenNamesTheLock(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "caddy reload") {
		t.Fatalf("second open: %v, want ErrLocked with a reload hint", err)
	}
}

func TestInMemory(t *testing.T) {
	s, err := Open(Options{InMemory: true, Dir: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(txn Txn) error { return txn.Set([]byte("x"), nil, 0) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestDueKeyOrder(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	a, b := DueKey("n", t0, "zzz"), DueKey("n", t0.Add(time.Nanosecond), "aaa")
	if string(a) >= string(b) {
		t.Fatal("due keys must sort by time before ID")
	}
	due, id, ok := ParseDueKey("n", a)
	if !ok || !due.Equal(t0) || id != "zzz" {
		t.Fatalf("ParseDueKey = %v %q %v", due, id, ok)
	}
	if string(DueUntil("n", t0)) <= string(a) || string(DueUntil("n", t0)) >= string(b) {
		t.Fatal("DueUntil must fall between entries due at t and after t")
	}
}

func TestFlushInterval(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(txn Txn) error { return txn.Set([]byte("k"), []byte("v"), 0) }); err != nil {
		t.Fatal(err)
	}
	if !s.dirty.Load() {
		t.Fatal("a commit did not mark the store dirty")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.dirty.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the background flush never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Badger asks for a 3 MiB flatbuffers builder for every table index it
// builds, however small the table. go.mod replaces flatbuffers with a copy
// that caps that first allocation (third_party/flatbuffers): without it a
// draining 100k-delivery backlog peaked about 20 MB higher. This fails if
// the replacement is dropped, and checks that the builder still grows.
func TestTableIndexBufferStartsSmall(t *testing.T) {
	b := flatbuffers.NewBuilder(3 << 20)
	if n := len(b.Bytes); n > 64<<10 {
		t.Fatalf("NewBuilder(3 MiB) allocated %d bytes up front; is the flatbuffers replace in go.mod?", n)
	}
	big := bytes.Repeat([]byte{7}, 1<<20)
	b.Finish(b.CreateByteVector(big))
	out := b.FinishedBytes()
	if !bytes.Contains(out, big) {
		t.Fatalf("a 1 MiB vector did not survive the builder's growth (%d bytes out)", len(out))
	}
}
