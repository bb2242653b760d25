package badger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store/storetest"
)

// BenchmarkReclaim removes a million expired sessions from the store's
// files: it reports how long the reclaim took and the disk the store took
// before and after.
//
//	go test ./internal/store/badger -run '^$' -bench Reclaim -benchtime 1x
func BenchmarkReclaim(b *testing.B) {
	const sessions = 1_000_000
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		s, err := Open(Options{Dir: dir, MinFree: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		expiry := now.Add(3 * time.Minute) // after the filling, which takes a minute or two
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for i := next.Add(1); i <= sessions; i = next.Add(1) {
					tp := record.Touchpoint{Network: "aff", ClickID: fmt.Sprint("click-", i), CapturedAt: now, ExpiresAt: expiry,
						LandingURL: fmt.Sprintf("https://shop.example/?clickid=click-%d&utm_source=partner&sub1=spring", i),
						ClientIP:   "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}
					if err := s.CreateSession(context.Background(), &record.Session{ID: fmt.Sprintf("%032x", i), CreatedAt: now, Touchpoints: []record.Touchpoint{tp}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		if err := s.Purge(); err != nil {
			b.Fatal(err)
		}
		before := storetest.DiskUsage(b, dir)
		time.Sleep(time.Until(expiry.Add(time.Second))) // Badger's expiry is in whole seconds of the wall clock
		b.StartTimer()
		start := time.Now()
		n, err := s.Reclaim()
		b.StopTimer()
		b.Logf("reclaimed %d records in %s", n, time.Since(start).Round(time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		if n < 2*sessions {
			b.Fatalf("reclaimed %d records, want each session's head and touchpoint", n)
		}
		after := storetest.DiskUsage(b, dir)
		b.ReportMetric(float64(before)/(1<<20), "MiB-before")
		b.ReportMetric(float64(after)/(1<<20), "MiB-after")
		_ = s.Close()
	}
}
