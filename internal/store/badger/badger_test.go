package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/store/storetest"
)

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			s, err := Open(Options{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func TestConformanceOnDisk(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			s, err := Open(Options{Dir: t.TempDir(), MinFree: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

// TestConformanceOnSmallFilesystem runs the suite on a real 64 MiB tmpfs,
// and its storage-fault test by filling that filesystem with a file until
// less than the engine's reserve is free, then removing the file.
func TestConformanceOnSmallFilesystem(t *testing.T) {
	mnt := storetest.Tmpfs(t, "64m")
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dir, err := os.MkdirTemp(mnt, "store")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			s, err := Open(Options{Dir: dir, MinFree: 16 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Break: func(t *testing.T, _ store.Store) func() {
			filler := filepath.Join(mnt, "filler")
			fill(t, filler, mnt, 8<<20)
			return func() { _ = os.Remove(filler) }
		},
	})
}

// fill writes a file at path that leaves the filesystem of mnt with leave
// bytes free, as they were counted before it started: space freed while it
// writes (the store releasing its reserve) stays free.
func fill(t *testing.T, path, mnt string, leave int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	free, _, err := freeSpace(mnt)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for left := free - leave; left > 0; {
		n, err := f.Write(buf[:min(int64(len(buf)), left)])
		if err != nil {
			t.Fatalf("filling %s: %v", mnt, err)
		}
		left -= int64(n)
	}
}

// TestReserveIsReleasedWhenTheDiskFills: the store keeps a reserve file,
// releases it by itself when something else fills the disk, and makes it
// again when space returns.
func TestReserveIsReleasedWhenTheDiskFills(t *testing.T) {
	mnt := storetest.Tmpfs(t, "64m")
	dir := filepath.Join(mnt, "store")
	s, err := Open(Options{Dir: dir, MinFree: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reserve := filepath.Join(dir, reserveName)
	waitFile := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := os.Stat(reserve)
			if (err == nil) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reserve file present: %v, want %v", err == nil, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFile(true)
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, mnt, 1<<20)
	waitFile(false)
	if free, _, _ := freeSpace(mnt); free < 8<<20 {
		t.Fatalf("%d bytes free after the reserve was released, want its 8 MiB back", free)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Ping with the disk nearly full: %v", err)
	}
	_ = os.Remove(filler)
	waitFile(true)
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Ping(context.Background()); err != nil; err = s.Ping(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatalf("Ping after space returned: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPurgeRemovesErasedBytesFromDisk: after an erasure and the purge that
// follows it, no file of the store holds the erased click ID, landing URL or
// user agent any more.
func TestPurgeRemovesErasedBytesFromDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	secret := "ERASE-ME-7f3a9c"
	tp := record.Touchpoint{Network: "aff", ClickID: secret, CapturedAt: now, ExpiresAt: now.Add(time.Hour),
		LandingURL: "https://shop.example/?clickid=" + secret, UserAgent: "agent-" + secret}
	for i := range 3 {
		// A few versions of the session, as repeated clicks write them.
		tp.CapturedAt = now.Add(time.Duration(i) * time.Second)
		if i == 0 {
			err = s.CreateSession(ctx, &record.Session{ID: "sess-erase", CreatedAt: now, Touchpoints: []record.Touchpoint{tp}})
		} else {
			err = s.AddTouchpoints(ctx, "sess-erase", []record.Touchpoint{tp}, "", 20, now)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Enough other traffic to push the session through a memtable flush.
	for i := range 3000 {
		other := record.Touchpoint{Network: "aff", ClickID: fmt.Sprint("other-", i), CapturedAt: now, ExpiresAt: now.Add(time.Hour),
			LandingURL: strings.Repeat("x", 900)}
		if err := s.CreateSession(ctx, &record.Session{ID: fmt.Sprint("s", i), CreatedAt: now, Touchpoints: []record.Touchpoint{other}}); err != nil {
			t.Fatal(err)
		}
	}
	if !filesHold(t, dir, secret) {
		t.Fatal("the click ID is in no file before the erasure: the test proves nothing")
	}
	if ok, err := s.EraseSession(ctx, "sess-erase", now, now.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("erase: %v %v", ok, err)
	}
	if !filesHold(t, dir, secret) {
		t.Fatal("the erasure alone removed the bytes: the purge proves nothing")
	}
	if err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	if filesHold(t, dir, secret) {
		t.Fatal("the erased click ID is still on disk after the purge")
	}
	if _, err := s.Session(ctx, "s1", now); err != nil {
		t.Fatalf("another session after the purge: %v", err)
	}
}

// TestReclaimRemovesExpiredRecordsFromDisk: records that expired leave the
// store's files at the next reclaim, although no write reaches their keys
// again (a compaction alone would keep them), and live records stay.
func TestReclaimRemovesExpiredRecordsFromDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	expiry := now.Add(2 * time.Second)
	const marker = "EXPIRES-SOON-41d9"
	for i := range 3000 {
		tp := record.Touchpoint{Network: "aff", ClickID: fmt.Sprint("old-", i), CapturedAt: now, ExpiresAt: expiry,
			LandingURL: "https://shop.example/?m=" + marker + strings.Repeat("x", 900)}
		if err := s.CreateSession(ctx, &record.Session{ID: fmt.Sprint("old", i), CreatedAt: now, Touchpoints: []record.Touchpoint{tp}}); err != nil {
			t.Fatal(err)
		}
	}
	live := record.Touchpoint{Network: "aff", ClickID: "live", CapturedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, &record.Session{ID: "live", CreatedAt: now, Touchpoints: []record.Touchpoint{live}}); err != nil {
		t.Fatal(err)
	}
	// Everything in the last level, as in a store no write reaches.
	if err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	if !filesHold(t, dir, marker) {
		t.Fatal("the expiring records are in no file: the test proves nothing")
	}
	full := storetest.DiskUsage(t, dir)
	time.Sleep(time.Until(expiry.Add(time.Second))) // Badger's expiry is in whole seconds of the wall clock
	if err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	if !filesHold(t, dir, marker) {
		t.Fatal("a compaction alone dropped the expired records: the reclaim proves nothing")
	}
	n, err := s.Reclaim()
	if err != nil {
		t.Fatal(err)
	}
	if n < 3000 {
		t.Fatalf("reclaimed %d records, want the 3000 sessions' at least", n)
	}
	if filesHold(t, dir, marker) {
		t.Fatal("the expired records are still on disk after the reclaim")
	}
	if after := storetest.DiskUsage(t, dir); after > full/2 {
		t.Fatalf("the store takes %d bytes after the reclaim, %d before: want less than half", after, full)
	}
	if _, err := s.Session(ctx, "live", time.Now()); err != nil {
		t.Fatalf("the live session after the reclaim: %v", err)
	}
}

// filesHold reports whether a file under dir holds s.
func filesHold(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(b, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestClaimFloorPassesASameTimeBacklog: deliveries queued at one moment
// share their due time; each claim must start after the ones claimed
// before it, not at the front of that moment's keys, or draining a backlog
// steps over every key claimed so far at every claim.
func TestClaimFloorPassesASameTimeBacklog(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	var ds []record.Delivery
	for i := range 100 {
		id := fmt.Sprintf("o%03d", i)
		ds = append(ds, record.Delivery{ID: record.NewID(now), Network: "net", Event: "purchase", OrderID: id, Key: "net/purchase/" + id,
			MaxAge: time.Hour, Postback: record.Postback{Network: "net", Order: order.Order{ID: id, Event: "purchase"}}})
	}
	if _, err := s.Record(ctx, store.Recording{Deliveries: ds, DedupUntil: now.Add(time.Hour), Now: now}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		claimed, _, err := s.Claim(ctx, "net", "me", 10, now, now.Add(time.Minute))
		if err != nil || len(claimed) != 10 {
			t.Fatalf("claim %d: %d deliveries, %v", round, len(claimed), err)
		}
		at, id, _ := s.floors.get("net")
		if want := ds[10*(round+1)].ID; !at.Equal(now) || id != want {
			t.Fatalf("after claim %d the floor is at %v %q, want the next key %q", round, at, id, want)
		}
	}
}
