package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

// backlogSize is the number of queued deliveries Caddy finds at start.
const backlogSize = 100_000

// BenchmarkBacklogDrain starts the real binary on a store that already
// holds backlogSize queued deliveries (an outage of the network, or a long
// downtime) and measures how fast it drains them to a loopback receiver and
// how much memory the process needs meanwhile: the dispatcher must page
// through the backlog, not load it. Run it with
//
//	go test -run '^$' -bench BenchmarkBacklogDrain -benchtime 1x ./cmd/caddy/
//
// Metrics: peak-RSS-MB (VmHWM of the child, the kernel's high-water mark),
// sampled-RSS-MB (the largest VmRSS seen every 100 ms), anon-RSS-MB (the
// largest RssAnon seen: VmRSS without the store's memory-mapped files, which
// the kernel can drop under pressure), drain-s and deliveries/s (from
// starting the process until nothing is pending).
//
// Diagnostics: BACKLOG_TRACE=1 prints the memory samples once a second to
// stderr; BACKLOG_HEAP_PROFILE=<file> saves the child's heap profile (from
// Caddy's admin /debug/pprof/heap) when 90% of the backlog has been sent,
// for `go tool pprof -sample_index=inuse_space -top <file>`.
func BenchmarkBacklogDrain(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc to read the child's memory")
	}
	bin := caddyBinary(b)
	for range b.N {
		b.StopTimer()
		benchmarkBacklogDrain(b, bin)
	}
}

func benchmarkBacklogDrain(b *testing.B, bin string) {
	var received atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		_, _ = w.Write([]byte("OK"))
	}))
	defer rc.Close()

	dir := b.TempDir()
	storage := filepath.Join(dir, "postback")
	st, err := badgerstore.Open(badgerstore.Options{Dir: storage})
	if err != nil {
		b.Fatal(err)
	}
	// Filled offline, as nothing else holds the store's lock yet.
	prefill(b, st, "dur", backlogSize)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}

	adminPort, httpPort := freePort(b), freePort(b)
	cfg := durableConfig(storage, rc.URL, adminPort, httpPort)
	b.StartTimer()
	start := time.Now()
	p := startCaddy(b, bin, dir, filepath.Join(dir, "home"), cfg, adminPort)
	pid := p.cmd.Process.Pid

	var sampled, anon int64 // kB
	heapTaken, trace := false, os.Getenv("BACKLOG_TRACE") != ""
	deadline := time.Now().Add(10 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		rss, errR := procStatusKB(pid, "VmRSS")
		ra, errA := procStatusKB(pid, "RssAnon")
		if errR == nil && errA == nil {
			sampled, anon = max(sampled, rss), max(anon, ra)
			if trace && i%10 == 0 {
				fmt.Fprintf(os.Stderr, "%6.1fs received %6d RSS %4d MB anon %4d MB\n",
					time.Since(start).Seconds(), received.Load(), rss/1024, ra/1024)
			}
		}
		if hp := os.Getenv("BACKLOG_HEAP_PROFILE"); hp != "" && !heapTaken && received.Load() >= backlogSize*9/10 {
			heapTaken = true
			saveHeapProfile(b, p, hp)
		}
		// The queue is asked only once the receiver has seen every
		// delivery.
		if received.Load() >= backlogSize {
			pending, err := p.pending()
			if err != nil {
				b.Fatalf("pending: %v\n%s", err, p.tail())
			}
			if len(pending) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("backlog not drained in 10 minutes: %d of %d received\n%s", received.Load(), backlogSize, p.tail())
		}
		<-tick.C
	}
	elapsed := time.Since(start)
	b.StopTimer()
	hwm, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		b.Fatal(err)
	}
	p.kill()
	if got := received.Load(); got < backlogSize {
		b.Fatalf("receiver got %d of %d", got, backlogSize)
	}
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(sampled)/1024, "sampled-RSS-MB")
	b.ReportMetric(float64(anon)/1024, "anon-RSS-MB")
	b.ReportMetric(elapsed.Seconds(), "drain-s")
	b.ReportMetric(backlogSize/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(0, "ns/op") // one drain per op; the metrics above say it
	if hwm > 256<<10 {
		b.Logf("peak RSS %d MB is above the 256 MB target (anonymous %d MB); see BACKLOG_HEAP_PROFILE", hwm>>10, anon>>10)
	}
}

// prefill queues n deliveries to network in st, 500 per transaction.
func prefill(b *testing.B, st store.Store, network string, n int) {
	b.Helper()
	ctx := context.Background()
	const batch = 500
	t := time.Now()
	for i := 0; i < n; i += batch {
		ds := make([]record.Delivery, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			orderID := fmt.Sprintf("BL%06d", j)
			o := order.Order{Source: "webhook", Event: "purchase", ID: orderID, Status: order.StatusApproved}
			ds = append(ds, record.Delivery{
				ID: record.NewID(t), Network: network, Event: "purchase", OrderID: orderID, Status: order.StatusApproved,
				Key: network + "/purchase/" + orderID, MaxAge: 72 * time.Hour, CreatedAt: t,
				Postback: record.Postback{Network: network, Order: o, Touchpoint: record.Touchpoint{Network: network, ClickID: "backlog"}, Time: t},
			})
		}
		res, err := st.Record(ctx, store.Recording{Deliveries: ds, DedupUntil: t.Add(time.Hour), Now: t})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Queued) != len(ds) {
			b.Fatalf("queued %d of %d", len(res.Queued), len(ds))
		}
	}
	qs, err := st.QueueStats(ctx, t)
	if err != nil {
		b.Fatal(err)
	}
	if len(qs) != 1 || qs[0].Queued != n {
		b.Fatalf("prefilled %+v, want %d", qs, n)
	}
}

// procStatusKB reads one "Name:   123 kB" line of /proc/<pid>/status.
func procStatusKB(pid int, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+":")
		if !ok {
			continue
		}
		return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}

// saveHeapProfile writes the child's heap profile (Caddy's admin endpoint
// serves pprof) to path, for finding what holds memory mid-drain.
func saveHeapProfile(b *testing.B, p *proc, path string) {
	resp, err := http.Get(p.admin + "/debug/pprof/heap")
	if err != nil {
		b.Logf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Logf("heap profile: %v", err)
	}
}
