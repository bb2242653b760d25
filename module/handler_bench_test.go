package module

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/stats"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

// These benchmarks drive Handler.ServeHTTP directly, without a Caddy server
// around it, so that they measure the module's own cost per request. The
// App is assembled by hand rather than through App.Provision: provisioning
// needs a caddy.Context with a loaded config (ctx.App, ctx.Logger), and
// without one Caddy hands out a debug-level development logger whose output
// would drown the benchmark lines. The fields set here are the ones the hot
// path reads; the store is a real in-memory Badger and the outbox, tracker
// and metrics are the real ones, but the dispatcher is never started, so
// queued postbacks stay queued and nothing leaves the process.
//
// Run them with:
//
//	go test ./module -run '^$' -bench . -benchmem

// benchBody is what the upstream ("next") writes for ordinary pages.
var benchBody = []byte("<!doctype html><html><head><title>Notebook</title></head><body><h1>A5 dot-grid notebook</h1><p>In stock.</p></body></html>")

// htmlType is preallocated so that next's header write does not allocate and
// the pass-through allocation count is the handler's alone.
var htmlType = []string{"text/html; charset=utf-8"}

// benchNext stands in for the handlers after postback (reverse_proxy,
// file_server): it sets a content type and writes a small page.
var benchNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.Header()["Content-Type"] = htmlType
	_, err := w.Write(benchBody)
	return err
})

// benchWriter is a reusable http.ResponseWriter that discards the body, so
// the benchmark loop itself allocates nothing.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func newBenchWriter() *benchWriter { return &benchWriter{header: make(http.Header, 4)} }

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(status int) { w.status = status }

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// reset forgets the previous response; the header map is kept (cleared) so
// that it is not reallocated every iteration.
func (w *benchWriter) reset() {
	clear(w.header)
	w.status, w.n = 0, 0
}

// benchEnv is a handler wired to a real in-memory store, plus one visitor
// whose session already holds a click.
type benchEnv struct {
	h       *Handler
	app     *App
	session string // session ID
	cookie  string // its signed cookie value
}

// newBenchEnv assembles an App and a Handler the way Provision would, with
// one network ("demo", click parameter clickid) and the given rules, on an
// in-memory store.
func newBenchEnv(tb testing.TB, rules ...*Rule) *benchEnv {
	tb.Helper()
	return newBenchEnvOn(tb, badgerstore.Options{InMemory: true}, rules...)
}

// newBenchEnvOn is newBenchEnv on a store opened with so.
func newBenchEnvOn(tb testing.TB, so badgerstore.Options, rules ...*Rule) *benchEnv {
	tb.Helper()
	so.Logger = zap.NewNop()
	if so.MinFree == 0 {
		so.MinFree = 1 << 20
	}
	st, err := badgerstore.Open(so)
	if err != nil {
		tb.Fatal(err)
	}
	return newBenchEnvStore(tb, st, rules...)
}

// newBenchEnvStore is newBenchEnv on st, which it closes when tb ends.
func newBenchEnvStore(tb testing.TB, st store.Store, rules ...*Rule) *benchEnv {
	tb.Helper()
	nop := zap.NewNop()
	n := &Network{ClickParams: []string{"clickid"},
		// Never contacted: the dispatcher is not started.
		URL: "http://127.0.0.1:1/postback?clickid={click_id}&payout={amount}&txid={order_id}"}
	cn, dest, _, err := n.provision("demo", &envExpander{})
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := capture.NewRecognizer([]capture.Network{cn}, capture.DefaultMaxClickIDLength)
	if err != nil {
		tb.Fatal(err)
	}
	hs := store.NewHealth(st, nil)
	tb.Cleanup(func() { _ = hs.Close() })
	signer, err := capture.NewSigner(capture.NewKey())
	if err != nil {
		tb.Fatal(err)
	}
	sessions := &capture.Sessions{Store: hs, MaxTouchpoints: capture.DefaultMaxTouchpoints}
	app := &App{
		Cookie:           &Cookie{Name: DefaultCookieName},
		MaxClickIDLength: capture.DefaultMaxClickIDLength,
		MaxTouchpoints:   capture.DefaultMaxTouchpoints,
		StorageTimeout:   caddy.Duration(DefaultStorageTimeout),
		logger:           nop,
		recognizer:       rec,
		sessions:         sessions,
		rt:               &runtime{store: hs, dispatcher: outbox.New(hs, outbox.Options{}), tally: stats.New(hs, nil)},
		tracker: &conversion.Tracker{Store: hs, Policy: attribution.LastClick, SessionDailyLimit: -1,
			Networks: map[string]conversion.Network{"demo": {
				Attribution: attribution.Network{Role: cn.Role, Window: cn.Window}, Destination: dest,
			}}},
		cookieLife: DefaultWindow,
		// Counting clicks and conversions is part of the real cost.
		metrics: registerMetrics(prometheus.NewRegistry()),
	}
	app.signer = new(signerState)
	app.signer.Store(signer)
	app.clickCounters = []prometheus.Counter{app.metrics.clicks.WithLabelValues("demo")}
	if err := app.provisionCookie(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	h := &Handler{Conversions: rules, app: app, logger: nop, rejections: new(rejectionLog)}
	for _, rule := range rules {
		if err := rule.provision(ctx); err != nil {
			tb.Fatal(err)
		}
	}

	// A visitor who landed earlier with a click.
	t := time.Now()
	tp := record.Touchpoint{Network: "demo", Param: "clickid", ClickID: "bench-visitor", CapturedAt: t, ExpiresAt: t.Add(DefaultWindow)}
	id, _, err := sessions.Capture(context.Background(), "", []record.Touchpoint{tp}, "", t)
	if err != nil {
		tb.Fatal(err)
	}
	return &benchEnv{h: h, app: app, session: id, cookie: signer.Sign(id)}
}

// thankYouRule is a confirmation page whose order comes from placeholders.
func thankYouRule() *Rule {
	return &Rule{
		Events:          []string{"purchase"},
		MatcherSetsRaw:  caddyhttp.RawMatcherSets{{"path": json.RawMessage(`["/thank-you"]`)}},
		OrderID:         "{http.request.uri.query.order}",
		Amount:          "{http.request.uri.query.total}",
		DefaultCurrency: "USD",
	}
}

// benchRequest builds a request as Caddy's server hands it to handlers:
// with a replacer, the vars map and the client IP in its context.
func benchRequest(w http.ResponseWriter, target, cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
	r.Header.Set("Accept", "text/html")
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, &caddyhttp.Server{})
}

// passThroughRequest is case (a): no click ID, no session cookie, a query
// string with other parameters and a Cookie header with other cookies.
func passThroughRequest(w http.ResponseWriter) *http.Request {
	return benchRequest(w, "http://shop.example/products/notebook?utm_source=newsletter&utm_medium=email&page=2&sort=price",
		"_ga=GA1.1.1197596843.1673515099; theme=dark; cart_id=9f8e7d6c; cookie_consent=yes")
}

// serveRepeatedly serves the same request for the whole benchmark and
// checks that the page went through whole.
func serveRepeatedly(b *testing.B, env *benchEnv, w *benchWriter, r *http.Request) {
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
			b.Fatal(err)
		}
	}
	if w.n != len(benchBody) {
		b.Fatalf("wrote %d bytes, want %d", w.n, len(benchBody))
	}
}

// BenchmarkPassThrough is case (a): the cost of the directive on a request
// it has nothing to do with. Target: 0 allocs/op, < 200 ns/op.
func BenchmarkPassThrough(b *testing.B) {
	env := newBenchEnv(b, thankYouRule())
	w := newBenchWriter()
	r := passThroughRequest(w)
	serveRepeatedly(b, env, w, r)
}

// BenchmarkNewClick is case (b): every request lands with a new click ID and
// no cookie, so each one creates a session (one Badger transaction) and sets
// the cookie.
func BenchmarkNewClick(b *testing.B) {
	benchNewClicks(b, newBenchEnv(b, thankYouRule()))
}

// benchNewClicks serves a landing request with a new click ID and no
// cookie per iteration.
func benchNewClicks(b *testing.B, env *benchEnv) {
	w := newBenchWriter()
	r := benchRequest(w, "http://shop.example/?clickid=x&utm_source=partner&sub1=spring", "")
	// The query strings are made before timing so that only the handler is
	// measured; a few are reused when b.N outgrows them, which still
	// exercises the same path (a second click on a fresh session).
	queries := make([]string, 1<<16)
	for i := range queries {
		queries[i] = fmt.Sprintf("clickid=bench-%d-%x&utm_source=partner&sub1=spring", i, time.Now().UnixNano())
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		r.URL.RawQuery = queries[i&(len(queries)-1)]
		i++
		if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
			b.Fatal(err)
		}
	}
	if !strings.HasPrefix(w.header.Get("Set-Cookie"), DefaultCookieName+"=") {
		b.Fatalf("no session cookie set: %q", w.header)
	}
}

// BenchmarkNewClickParallel is BenchmarkNewClick with many visitors at
// once on a store on disk, as a landing page under load sees them.
func BenchmarkNewClickParallel(b *testing.B) {
	env := newBenchEnvOn(b, badgerstore.Options{Dir: b.TempDir()}, thankYouRule())
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := newBenchWriter()
		r := benchRequest(w, "http://shop.example/?clickid=x&utm_source=partner&sub1=spring", "")
		for pb.Next() {
			w.reset()
			r.URL.RawQuery = fmt.Sprintf("clickid=bench-%d&utm_source=partner&sub1=spring", seq.Add(1))
			if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
				b.Error(err)
				return
			}
			if w.header.Get("Set-Cookie") == "" {
				b.Error("no session cookie set")
				return
			}
		}
	})
}

// BenchmarkSessionNoRule is case (c): a visitor with a valid session cookie
// on a page no conversion rule matches: the cookie is verified, the rules'
// matchers run, and nothing touches the store.
func BenchmarkSessionNoRule(b *testing.B) {
	env := newBenchEnv(b, thankYouRule())
	w := newBenchWriter()
	r := benchRequest(w, "http://shop.example/products/notebook?page=2",
		"_ga=GA1.1.1197596843.1673515099; "+DefaultCookieName+"="+env.cookie+"; theme=dark")
	serveRepeatedly(b, env, w, r)
}

// BenchmarkConfirmationPage is case (d): a visitor with a session reaches a
// confirmation page whose order comes from placeholders. Each iteration is a
// new order, so each one is credited and its postback queued in one store
// transaction (not a duplicate that stops at the idempotency marker).
func BenchmarkConfirmationPage(b *testing.B) {
	benchConfirmations(b, newBenchEnv(b, thankYouRule()))
}

// benchConfirmations serves the visitor's confirmation page of a new order
// per iteration.
func benchConfirmations(b *testing.B, env *benchEnv) {
	w := newBenchWriter()
	r := benchRequest(w, "http://shop.example/thank-you?order=x&total=49.90",
		DefaultCookieName+"="+env.cookie+"; theme=dark")
	stamp := time.Now().UnixNano()
	queries := make([]string, 1<<16)
	for i := range queries {
		queries[i] = fmt.Sprintf("order=B%x-%d&total=49.90", stamp, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		r.URL.RawQuery = queries[i&(len(queries)-1)]
		i++
		if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if w.n != len(benchBody) {
		b.Fatalf("wrote %d bytes, want %d", w.n, len(benchBody))
	}
	qs, err := env.app.rt.store.QueueStats(context.Background(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if len(qs) == 0 || qs[0].Queued == 0 {
		b.Fatal("no postback was queued: the conversion was not credited")
	}
}

// withClickCookies gives the bench app the click cookies of Rewardful and
// FirstPromoter besides its query click ID.
func withClickCookies(tb testing.TB, env *benchEnv) *benchEnv {
	tb.Helper()
	nets := append(env.app.recognizer.Networks(),
		capture.Network{Name: "rewardful", Cookies: capture.Presets["rewardful"].Cookies, Window: DefaultWindow},
		capture.Network{Name: "firstpromoter", Params: capture.Presets["firstpromoter"].Params, Cookies: capture.Presets["firstpromoter"].Cookies, Window: DefaultWindow})
	rec, err := capture.NewRecognizer(nets, capture.DefaultMaxClickIDLength)
	if err != nil {
		tb.Fatal(err)
	}
	env.app.recognizer = rec
	env.app.seenClicks = capture.NewSeenClicks(0)
	for _, n := range nets[1:] {
		env.app.clickCounters = append(env.app.clickCounters, env.app.metrics.clicks.WithLabelValues(n.Name))
	}
	return env
}

// BenchmarkPassThroughClickCookies is case (a) with click cookies
// configured: the cookie header is scanned for them too.
func BenchmarkPassThroughClickCookies(b *testing.B) {
	env := withClickCookies(b, newBenchEnv(b, thankYouRule()))
	w := newBenchWriter()
	r := passThroughRequest(w)
	serveRepeatedly(b, env, w, r)
}

// BenchmarkClickCookieHeld is a visitor whose every request carries a
// click cookie the session already holds (pages and assets alike): after
// the first request it is answered from memory, with no storage access.
func BenchmarkClickCookieHeld(b *testing.B) {
	env := withClickCookies(b, newBenchEnv(b, thankYouRule()))
	w := newBenchWriter()
	r := benchRequest(w, "http://shop.example/assets/app.css", env.cookie+"; _fprom_tid=5c1a4e0e-07e5-4d0c-b8a8-1f3f0a3e9d21; theme=dark")
	r.Header.Set("Cookie", DefaultCookieName+"="+env.cookie+"; _fprom_tid=5c1a4e0e-07e5-4d0c-b8a8-1f3f0a3e9d21; theme=dark")
	serveRepeatedly(b, env, w, r)
}

// BenchmarkPassThroughBaseline is case (a) without the handler: next alone,
// on the same writer and request. Subtracting it from BenchmarkPassThrough
// gives the directive's own cost.
func BenchmarkPassThroughBaseline(b *testing.B) {
	w := newBenchWriter()
	r := passThroughRequest(w)
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		if err := benchNext.ServeHTTP(w, r); err != nil {
			b.Fatal(err)
		}
	}
}

// linksPage is a 60 KB catalogue page with 12 buy.stripe.com Payment Links.
func linksPage() []byte {
	var b bytes.Buffer
	b.WriteString("<!doctype html><html><head><title>Shop</title></head><body><main>\n")
	for i := 0; b.Len() < 60<<10; i++ {
		if i%30 == 0 && i < 360 {
			fmt.Fprintf(&b, "<article><h2>Notebook %d</h2><a class=\"buy\" href=\"https://buy.stripe.com/test_6oE%05dAbcD\">Buy for $24</a></article>\n", i, i)
			continue
		}
		fmt.Fprintf(&b, "<article><h2>Notebook %d</h2><p>A5, dot grid, 192 pages of 120 gsm paper.</p><a href=\"/products/%d\">Details</a></article>\n", i, i)
	}
	b.WriteString("</main></body></html>\n")
	return b.Bytes()
}

// BenchmarkDecoratedPage is a visitor with a session fetching a 60 KB HTML
// page with 12 checkout links, which the handler decorates as it streams.
// next writes in 32 KiB pieces, as reverse_proxy does.
func BenchmarkDecoratedPage(b *testing.B) {
	env := newBenchEnv(b)
	env.h.Decorate = []*Decoration{{Host: "buy.stripe.com", Provider: "stripe"}}
	if err := env.h.provisionDecorations(); err != nil {
		b.Fatal(err)
	}
	page := linksPage()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header()["Content-Type"] = htmlType
		for p := page; len(p) > 0; {
			n := min(len(p), 32<<10)
			if _, err := w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	})
	w := newBenchWriter()
	r := benchRequest(w, "http://shop.example/notebooks", DefaultCookieName+"="+env.cookie)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		if err := env.h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
	if want := len(page) + 12*len("&client_reference_id=") + 12*len(env.cookie); w.n < want-12 {
		b.Fatalf("wrote %d bytes, want about %d (decorated)", w.n, want)
	}
}

// BenchmarkStripeWebhook is one signed checkout.session.completed webhook
// credited to a visitor: verification, parsing, and the conversion and its
// postback committed in one transaction. The store is in memory, so this is
// the CPU cost; on disk each credited webhook also syncs the store.
func BenchmarkStripeWebhook(b *testing.B) {
	const secret = "whsec_bench_0123456789abcdef0123456789abcdef"
	env := newBenchEnv(b)
	env.h.Webhooks = []*Webhook{{Path: "/.well-known/postback/stripe", Provider: "stripe", Secrets: []string{secret}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := env.h.provisionWebhooks(ctx); err != nil {
		b.Fatal(err)
	}
	w := newBenchWriter()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		// Making and signing the event is the sender's work, not ours.
		b.StopTimer()
		w.reset()
		i++
		id := stamp + "_" + strconv.Itoa(i)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		body := `{"id":"evt_` + id + `","object":"event","created":` + ts + `,"livemode":true,"type":"checkout.session.completed",` +
			`"data":{"object":{"id":"cs_live_` + id + `","object":"checkout.session","amount_total":4990,"currency":"usd",` +
			`"client_reference_id":"` + env.cookie + `","livemode":true,"metadata":{},"mode":"payment","payment_intent":"pi_` + id + `",` +
			`"payment_status":"paid","status":"complete"}}}`
		mac := hmac.New(sha256.New, []byte(secret))
		io.WriteString(mac, ts+"."+body)
		r := benchRequest(w, "http://shop.example/.well-known/postback/stripe", "")
		r.Method = http.MethodPost
		r.Body = io.NopCloser(strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
		b.StartTimer()
		if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
			b.Fatal(err)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkEndpointReport is one conversion report to the universal
// endpoint for a captured click ID: the token check, reading the report,
// finding the click's session and committing the conversion and its
// postback. The store is in memory, so this is the CPU cost.
func BenchmarkEndpointReport(b *testing.B) {
	const token = "tok_bench_0123456789abcdef"
	env := newBenchEnv(b)
	env.h.Endpoints = []*Endpoint{{Path: "/postback/in", Tokens: []*EndpointToken{{Secret: token}}}}
	if err := env.h.provisionEndpoints(); err != nil {
		b.Fatal(err)
	}
	w := newBenchWriter()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		w.reset()
		i++
		r := benchRequest(w, "http://shop.example/postback/in?token="+token+"&click_id=bench-visitor&order_id="+stamp+"_"+strconv.Itoa(i)+"&amount=49.90&currency=USD", "")
		b.StartTimer()
		if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
			b.Fatal(err)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
