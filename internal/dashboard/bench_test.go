package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The figures of the dashboard: page weights, and the time to render the
// overview over a large store on both engines.
//
//	go test ./internal/dashboard -run '^$' -bench . -benchtime 20x

// BenchmarkPageWeight renders each page of a store holding a full page of
// every listing (50 conversions, deliveries and webhooks) and reports its
// HTML, gzipped HTML, and the assets it loads (the same two files for
// every page, cached by the browser after the first).
func BenchmarkPageWeight(b *testing.B) {
	f := newBenchFixture(b)
	d := New(Options{Store: f.st, Host: f.host, Now: func() time.Time { return f.now }})
	var assets int
	_ = fs.WalkDir(assetFS, "assets", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			bs, _ := assetFS.ReadFile(p)
			assets += len(bs)
		}
		return nil
	})
	for _, pg := range []struct{ name, page string }{
		{"overview_24h", "/"}, {"overview_30d", "/?period=30d"}, {"conversions", "/conversions"}, {"conversion", "/conversions/" + f.convID},
		{"deliveries", "/deliveries"}, {"delivery", "/deliveries/" + f.deliveryID}, {"click_lookup", "/clicks?q=click-7"},
		{"networks", "/networks"}, {"network", "/networks/everflow"}, {"webhooks", "/webhooks"}, {"webhook", "/webhooks/" + f.webhookID},
	} {
		page := pg.page
		b.Run(pg.name, func(b *testing.B) {
			var html []byte
			for b.Loop() {
				rec := httptest.NewRecorder()
				path, query, _ := strings.Cut(page, "?")
				req := httptest.NewRequest(http.MethodGet, "/ops"+page, nil)
				req.URL.RawQuery = query
				d.Serve(rec, req, Request{Base: "/ops", Path: path, User: "alice"})
				if rec.Code != 200 {
					b.Fatalf("%s: %d %s", page, rec.Code, rec.Body)
				}
				html = rec.Body.Bytes()
			}
			var gz bytes.Buffer
			w, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
			_, _ = w.Write(html)
			_ = w.Close()
			b.ReportMetric(float64(len(html)), "html-bytes")
			b.ReportMetric(float64(gz.Len()), "html-gzip-bytes")
			b.ReportMetric(float64(assets), "asset-bytes")
		})
	}
}

// benchFixture is a store with a full page of everything.
type benchFixture struct {
	st                            store.Store
	host                          *testHost
	now                           time.Time
	convID, deliveryID, webhookID string
}

func newBenchFixture(b *testing.B) *benchFixture {
	st, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	f := &benchFixture{st: st, now: now, host: benchHost()}
	seedRecords(b, st, now, 50, 50)
	cs, _, err := st.Conversions(bg, store.ConversionQuery{Limit: 1}, now)
	if err != nil || len(cs) == 0 {
		b.Fatal(err)
	}
	f.convID, f.deliveryID = cs[0].ID, cs[0].Deliveries[0]
	for i := range 50 {
		id := record.NewID(now)
		if i == 0 {
			f.webhookID = id
		}
		if err := st.LogWebhook(bg, record.WebhookEntry{ID: id, Provider: "stripe", Path: "/hooks/stripe", ReceivedAt: now,
			Result: record.WebhookRecorded, EventID: fmt.Sprintf("evt_%024d", i), OrderID: fmt.Sprintf("ORD-%d", i),
			ConversionID: cs[0].ID, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	addCounters(b, st, yearOfCounters(now, largeSessions, largeConversions))
	return f
}

func benchHost() *testHost {
	h := &testHost{paused: map[string]time.Time{}}
	for _, n := range benchNetworks {
		h.nets = append(h.nets, Network{Name: n, Preset: n, Role: "affiliate", Window: 30 * 24 * time.Hour,
			URL: "https://" + n + ".example/postback?click={click_id}&amount={amount}&order={order_id}&token=REDACTED"})
	}
	return h
}

// benchNetworks are the networks of the large stores: five, as a shop
// running two affiliate programs and three ad platforms has.
var benchNetworks = []string{"everflow", "impact", "meta", "google_ads", "tiktok"}

// yearOfCounters returns the hourly counters that a year of traffic writes
// when it brings sessions new sessions (with as many clicks) and
// conversions orders, spread evenly over the hours: every label a real
// shop of this kind has (five networks; purchase, lead and rebill events;
// two currencies; credited, uncredited and duplicate results; attempts
// delivered, retrying or dead; three webhook providers with three results)
// is present in every hour, so the overview sums as many counters as it
// ever will: 58 per hour, 508,080 in the year (41,760 in 30 days).
func yearOfCounters(now time.Time, sessions, conversions int64) []store.Stat {
	const hours = 365 * 24
	end := now.UTC().Truncate(time.Hour)
	perHour := func(total int64) int64 { return max(total/hours, 1) }
	var out []store.Stat
	for h := range int64(hours) {
		hour := end.Add(-time.Duration(h) * time.Hour)
		add := func(metric, network, event, currency, result string, count, sum int64) {
			out = append(out, store.Stat{Hour: hour, Metric: metric, Network: network, Event: event, Currency: currency, Result: result, Count: count, Sum: sum})
		}
		add(store.StatSessions, "", "", "", "", perHour(sessions), 0)
		conv := perHour(conversions)
		for _, n := range benchNetworks {
			add(store.StatClicks, n, "", "", "", perHour(sessions)/int64(len(benchNetworks)), 0)
			add(store.StatAttempts, n, "", "", "delivered", conv, conv*180_000)
			add(store.StatAttempts, n, "", "", "retrying", max(conv/10, 1), max(conv/10, 1)*2_000_000)
			add(store.StatAttempts, n, "", "", "dead", max(conv/25, 1), max(conv/25, 1)*250_000)
			for _, ev := range []string{"purchase", "lead"} {
				add(store.StatConversions, n, ev, "USD", "credited", conv, conv*4990)
			}
		}
		for _, ev := range []string{"purchase", "lead", "rebill"} {
			for _, cur := range []string{"USD", "EUR"} {
				for _, res := range []string{"credited", "uncredited", "duplicate"} {
					add(store.StatConversions, store.StatAllNetworks, ev, cur, res, conv, conv*4990)
				}
			}
		}
		for _, p := range []string{"stripe", "shopify", "paddle"} {
			for _, res := range []string{"recorded", "duplicate", "rejected"} {
				add(store.StatWebhooks, p, "", "", res, 1, 0)
			}
		}
	}
	return out
}

// addCounters adds counters in batches a transaction can hold.
func addCounters(tb testing.TB, st store.Store, counters []store.Stat) {
	tb.Helper()
	for i := 0; i < len(counters); i += 500 {
		if err := st.AddStats(context.Background(), counters[i:min(i+500, len(counters))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// seedRecords stores, through the ports, sessions new sessions with one
// click each and conversions orders with one delivery each (of which 95%
// are delivered, 4% dead and 1% wait), with 16 writers at once.
func seedRecords(tb testing.TB, st store.Store, now time.Time, sessions, conversions int) {
	tb.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	run := func(total int, each func(i int) error) {
		next.Store(0)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total || failed.Load() != nil {
						return
					}
					if err := each(i); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if p := failed.Load(); p != nil {
			tb.Fatal(*p)
		}
	}
	touch := func(i int) record.Touchpoint {
		n := benchNetworks[i%len(benchNetworks)]
		at := now.Add(-time.Duration(i%(24*60)) * time.Minute)
		return record.Touchpoint{Network: n, Param: "clickid", ClickID: fmt.Sprintf("click-%d", i), CapturedAt: at,
			ExpiresAt: at.Add(30 * 24 * time.Hour), LandingURL: fmt.Sprintf("https://shop.example/?clickid=click-%d&sub1=spring", i),
			ClientIP: "203.0.113.0", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}
	}
	run(sessions, func(i int) error {
		tp := touch(i)
		return st.CreateSession(ctx, &record.Session{ID: record.NewID(tp.CapturedAt) + fmt.Sprintf("%08x", i), CreatedAt: tp.CapturedAt,
			Touchpoints: []record.Touchpoint{tp}})
	})
	run(conversions, func(i int) error {
		tp := touch(i)
		at := tp.CapturedAt.Add(time.Minute)
		o := order.Order{Source: "page:purchase", Event: "purchase", ID: fmt.Sprintf("ORD-%07d", i), Status: order.StatusApproved,
			Currency: "USD", Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true}
		conv := &record.Conversion{ID: record.NewID(at), Order: o, CreatedAt: at, ExpiresAt: at.Add(90 * 24 * time.Hour),
			Decision: "last click among affiliates", Credits: []record.Credit{{Network: tp.Network, Touchpoint: tp, Reason: "last affiliate click"}}}
		d := record.Delivery{ID: record.NewID(at), Network: tp.Network, Event: "purchase", OrderID: o.ID, Status: o.Status,
			Key: tp.Network + "/purchase/" + o.ID, MaxAge: 72 * time.Hour, CreatedAt: at,
			Postback: record.Postback{Network: tp.Network, Order: o, Touchpoint: tp, Time: at}}
		_, err := st.Record(ctx, store.Recording{Conversion: conv, ConversionKey: "purchase/" + o.ID, Deliveries: []record.Delivery{d},
			DedupUntil: at.Add(90 * 24 * time.Hour), Now: at})
		return err
	})
	// Send them: claim each network's queue in pages and settle 95% as
	// delivered, 4% as dead; the rest wait.
	for _, n := range benchNetworks {
		var settled int
		for {
			ds, _, err := st.Claim(ctx, n, "seed", 64, now, now.Add(time.Hour))
			if err != nil {
				tb.Fatal(err)
			}
			if len(ds) == 0 {
				break
			}
			var k atomic.Int64
			k.Store(int64(settled))
			run(len(ds), func(i int) error {
				del := ds[i]
				j := k.Add(1)
				at := record.Attempt{At: now, Status: 200, LatencyMS: 180, Outcome: "delivered", Snippet: "OK"}
				req := record.Request{Method: "GET", URL: "https://" + n + ".example/postback?click=" + del.Postback.Touchpoint.ClickID + "&token=REDACTED"}
				switch j % 100 {
				case 0, 1, 2, 3:
					at.Status, at.Outcome, at.Snippet = 400, "rejected", `{"error":"unknown click"}`
					return st.Bury(ctx, del.ID, "seed", &at, req, "rejected by the network (status 400)", now.Add(90*24*time.Hour))
				case 4:
					return st.Release(ctx, del.ID, "seed", now.Add(time.Hour))
				}
				return st.Complete(ctx, del.ID, "seed", at, req, now.Add(30*24*time.Hour))
			})
			settled += len(ds)
		}
	}
}

// Sizes of the large stores.
const (
	largeSessions    = 1_000_000
	largeConversions = 100_000
)

// BenchmarkOverviewLargeBadger renders the overview, on a Badger store on
// disk holding 1,000,000 sessions, 100,000 conversions with their
// deliveries (5,000 of them dead or waiting), and a year of hourly
// counters of that traffic.
func BenchmarkOverviewLargeBadger(b *testing.B) {
	st, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	benchOverview(b, st)
}

// BenchmarkOverviewLargePostgres is BenchmarkOverviewLargeBadger on
// PostgreSQL (a throwaway server, see pgtest).
func BenchmarkOverviewLargePostgres(b *testing.B) {
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: pgtest.Start(b).Database(b), MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	benchOverview(b, st)
}

func benchOverview(b *testing.B, st store.Store) {
	now := time.Now().UTC()
	start := time.Now()
	seedRecords(b, st, now, largeSessions, largeConversions)
	counters := yearOfCounters(now, largeSessions, largeConversions)
	addCounters(b, st, counters)
	b.Logf("seeded %d sessions, %d conversions and %d counters in %s", largeSessions, largeConversions, len(counters), time.Since(start).Round(time.Second))
	d := New(Options{Store: st, Host: benchHost(), Now: func() time.Time { return now }})
	for _, p := range Periods {
		b.Run(p.Name, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/ops/?period="+p.Name, nil)
				d.Serve(rec, req, Request{Base: "/ops", Path: "/", User: "alice"})
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), "dead letters") {
					b.Fatalf("overview: %d", rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "html-bytes")
		})
	}
}
