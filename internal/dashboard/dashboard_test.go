package dashboard

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

var bg = context.Background()

// testHost is the running configuration as a test sets it.
type testHost struct {
	nets   []Network
	paused map[string]time.Time
	wakes  atomic.Int32
	fired  []TestFire
}

func (h *testHost) Networks() []Network          { return h.nets }
func (h *testHost) Paused() map[string]time.Time { return h.paused }
func (h *testHost) Storage() string              { return "badger (test)" }
func (h *testHost) Wake()                        { h.wakes.Add(1) }
func (h *testHost) SessionID(_ context.Context, ref string) string {
	id, _, _ := strings.Cut(ref, ".")
	return id
}
func (h *testHost) TestFire(_ context.Context, tf TestFire) (*TestResult, error) {
	h.fired = append(h.fired, tf)
	return &TestResult{Request: record.Request{Method: "GET", URL: "https://n.example/pb?cid=" + tf.ClickID + "&token=REDACTED"},
		Attempt: record.Attempt{Status: 200, LatencyMS: 12.5, Outcome: "delivered", Snippet: "OK"}}, nil
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	s, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fixture is a store with one session, one conversion credited to
// "everflow" (delivered) and "meta" (dead), a webhook kept for inspection,
// and the counters of those events.
type fixture struct {
	st        store.Store
	host      *testHost
	now       time.Time
	sessionID string
	conv      *record.Conversion
	delivered string
	dead      string
	webhook   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: openStore(t), now: time.Now().UTC().Truncate(time.Millisecond),
		host: &testHost{nets: []Network{{Name: "everflow", Preset: "everflow", Role: "affiliate", Window: 30 * 24 * time.Hour,
			URL: "https://trk.example/?tid={click_id}&key=REDACTED"}, {Name: "meta", Preset: "meta_capi", Role: "platform"}},
			paused: map[string]time.Time{}}}
	now := f.now
	tp := func(network, click string) record.Touchpoint {
		return record.Touchpoint{Network: network, Param: "clickid", ClickID: click, CapturedAt: now.Add(-time.Hour),
			ExpiresAt: now.Add(24 * time.Hour), LandingURL: "https://shop.example/?clickid=" + click, ClientIP: "203.0.113.0"}
	}
	f.sessionID = record.NewID(now) + "s"
	if err := f.st.CreateSession(bg, &record.Session{ID: f.sessionID, CreatedAt: now.Add(-time.Hour),
		Touchpoints: []record.Touchpoint{tp("everflow", "EF-CLICK-1"), tp("meta", "fbclid-1"), tp("tiktok", "TT-CLICK-9")}}); err != nil {
		t.Fatal(err)
	}
	o := order.Order{Source: "page:purchase", Event: "purchase", ID: "ORDER-42", Status: order.StatusApproved, Currency: "EUR",
		Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true,
		Items: []order.Item{{Name: "Blue mug", Quantity: 2, Price: order.Decimal{Coef: 2495, Scale: 2}}}}
	conv := &record.Conversion{ID: record.NewID(now), SessionID: f.sessionID, Order: o, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Decision: "last click among affiliates", Credits: []record.Credit{
			{Network: "everflow", Touchpoint: tp("everflow", "EF-CLICK-1"), Reason: "last affiliate click"},
			{Network: "meta", Touchpoint: tp("meta", "fbclid-1"), Reason: "platform with a click"}}}
	var ds []record.Delivery
	for _, n := range []string{"everflow", "meta"} {
		ds = append(ds, record.Delivery{ID: record.NewID(now), Network: n, Event: "purchase", OrderID: "ORDER-42",
			Status: order.StatusApproved, Key: n + "/purchase/ORDER-42", MaxAge: 72 * time.Hour, CreatedAt: now,
			Postback: record.Postback{Network: n, Order: o, Time: now}})
	}
	res, err := f.st.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/ORDER-42", Deliveries: ds,
		DedupUntil: now.Add(time.Hour), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	f.conv = res.Conversion
	for _, n := range []string{"everflow", "meta"} {
		got, _, err := f.st.Claim(bg, n, "test", 1, now, now.Add(time.Minute))
		if err != nil || len(got) != 1 {
			t.Fatalf("claim %s: %v %v", n, got, err)
		}
		req := record.Request{Method: "GET", URL: "https://n.example/" + n + "?cid=x&token=REDACTED"}
		if n == "everflow" {
			f.delivered = got[0].ID
			err = f.st.Complete(bg, got[0].ID, "test", record.Attempt{At: now, Status: 200, LatencyMS: 20, Outcome: "delivered", Snippet: "OK"}, req, now.Add(time.Hour))
		} else {
			f.dead = got[0].ID
			err = f.st.Bury(bg, got[0].ID, "test", &record.Attempt{At: now, Status: 400, LatencyMS: 40, Outcome: "rejected",
				Snippet: `{"error":"invalid pixel"}`}, req, "rejected by the network (status 400)", now.Add(time.Hour))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.webhook = record.NewID(now)
	if err := f.st.LogWebhook(bg, record.WebhookEntry{ID: f.webhook, Provider: "stripe", Path: "/hooks/stripe", ReceivedAt: now,
		Result: record.WebhookKept, Reason: "no order in the event", Payload: `{"type":"mystery.event"}`, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h := now.Truncate(time.Hour)
	if err := f.st.AddStats(bg, []store.Stat{
		{Hour: h, Metric: store.StatClicks, Network: "everflow", Count: 1},
		{Hour: h, Metric: store.StatClicks, Network: "meta", Count: 1},
		{Hour: h, Metric: store.StatSessions, Count: 1},
		{Hour: h, Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "purchase", Currency: "EUR", Result: "credited", Count: 1, Sum: 4990},
		{Hour: h, Metric: store.StatConversions, Network: "everflow", Event: "purchase", Currency: "EUR", Result: "credited", Count: 1, Sum: 4990},
		{Hour: h, Metric: store.StatConversions, Network: "meta", Event: "purchase", Currency: "EUR", Result: "credited", Count: 1, Sum: 4990},
		{Hour: h, Metric: store.StatAttempts, Network: "everflow", Result: "delivered", Count: 1, Sum: 20_000},
		{Hour: h, Metric: store.StatAttempts, Network: "meta", Result: "dead", Count: 1, Sum: 40_000},
		{Hour: h, Metric: store.StatWebhooks, Network: "stripe", Result: "kept", Count: 1},
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// server serves the dashboard under /ops as a signed-in user, the way a
// host that strips nothing would mount it.
func (f *fixture) server(t *testing.T, user string, open bool) *httptest.Server {
	d := New(Options{Store: f.st, Host: f.host, Open: open, Now: func() time.Time { return f.now }, Logger: zaptest.NewLogger(t)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/ops") {
			http.NotFound(w, r)
			return
		}
		d.Serve(w, r, Request{Base: "/ops", Path: strings.TrimPrefix(r.URL.Path, "/ops"), User: user})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPagesShowTheRecords(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, "alice", false)
	c := client()
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/ops/", []string{"49.90 EUR", `id="conversions">1<`, `id="dead">1<`, "everflow", "stripe", "kept", "<svg", "alice"}},
		{"/ops/?period=30d", []string{"49.90 EUR", "<svg"}},
		{"/ops/conversions", []string{"ORDER-42", "49.90 EUR", "everflow, meta"}},
		{"/ops/conversions?network=meta&period=7d&status=approved&source=page", []string{"ORDER-42"}},
		{"/ops/conversions?event=lead", []string{"No conversions match."}},
		{"/ops/conversions/" + f.conv.ID, []string{"ORDER-42", "49.90 EUR", "last click among affiliates", "last affiliate click",
			"EF-CLICK-1", "203.0.113.0", "Blue mug", "24.95 EUR", f.delivered, f.dead, "other clicks", "TT-CLICK-9"}},
		{"/ops/deliveries", []string{f.delivered, f.dead, "Replay all dead letters of meta"}},
		{"/ops/deliveries?state=dead", []string{f.dead, "rejected by the network"}},
		{"/ops/deliveries/" + f.dead, []string{"invalid pixel", "400", "40.0 ms", "token=REDACTED", "Replay this postback"}},
		{"/ops/clicks?q=EF-CLICK-1", []string{f.sessionID, "yes: ORDER-42"}},
		{"/ops/clicks?q=" + f.sessionID + ".signature", []string{"fbclid-1", "EF-CLICK-1", "Conversions of this session"}},
		{"/ops/clicks?q=nothing-like-it", []string{"No live click or session matches"}},
		{"/ops/networks", []string{"everflow", "meta_capi", "platform"}},
		{"/ops/networks/everflow", []string{"key=REDACTED", "Test fire", "720h0m0s"}},
		{"/ops/webhooks", []string{"stripe", "no order in the event", "view"}},
		{"/ops/webhooks/" + f.webhook, []string{"mystery.event"}},
	} {
		status, body := fetch(t, c, srv.URL+tc.path)
		if status != 200 {
			t.Errorf("GET %s: %d\n%s", tc.path, status, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) && !strings.Contains(body, strings.ReplaceAll(w, `"`, "&#34;")) {
				t.Errorf("GET %s: no %q in the page", tc.path, w)
			}
		}
		// Every link stays under the mount point.
		for _, m := range regexp.MustCompile(`(?:href|action|src)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
			if !strings.HasPrefix(m[1], "/ops/") {
				t.Errorf("GET %s: link %q outside /ops/", tc.path, m[1])
			}
		}
	}
}

func TestBadInputIsExplained(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, "alice", false)
	for path, want := range map[string]string{
		"/ops/deliveries?state=bogus":  "want one of queued, retrying, running, delivered, dead",
		"/ops/conversions?status=won":  "want one of approved, pending, rejected, refunded",
		"/ops/?period=1y":              "want one of 24h, 7d, 30d",
		"/ops/webhooks?colour=blue":    "unknown parameter",
		"/ops/conversions/0000":        "There is no such record",
		"/ops/networks/nowhere":        "No network nowhere is configured",
		"/ops/no-such-page":            "The dashboard has no page",
		"/ops/deliveries?result=kept1": "unknown parameter",
	} {
		status, body := fetch(t, client(), srv.URL+path)
		if status < 400 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want an error page saying %q\n%s", path, status, want, body)
		}
	}
}

func TestRefusedWithoutUser(t *testing.T) {
	f := newFixture(t)
	status, body := fetch(t, client(), f.server(t, "", false).URL+"/ops/conversions")
	if status != http.StatusForbidden || !strings.Contains(body, "basic_auth") || strings.Contains(body, "ORDER-42") {
		t.Fatalf("unauthenticated: %d, want 403 with how to protect the dashboard and no data\n%s", status, body)
	}
	// Its stylesheet is served all the same, so the refusal page reads well.
	if status, _ := fetch(t, client(), f.server(t, "", false).URL+"/ops/assets/style.css"); status != 200 {
		t.Errorf("stylesheet for the refusal page: %d", status)
	}
	if status, body := fetch(t, client(), f.server(t, "", true).URL+"/ops/conversions"); status != 200 || !strings.Contains(body, "ORDER-42") {
		t.Fatalf("open dashboard: %d", status)
	}
}

// post sends a form the way a browser does from the page at from.
func post(t *testing.T, c *http.Client, target string, form url.Values, origin string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var tokenField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestReplayNeedsTheDashboardsOwnForm(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, "alice", false)
	c := client()
	_, page := fetch(t, c, srv.URL+"/ops/deliveries/"+f.dead)
	m := tokenField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the delivery page has no token in its replay form")
	}
	token := m[1]
	target := srv.URL + "/ops/deliveries/" + f.dead + "/replay"
	stillDead := func(when string) {
		t.Helper()
		d, err := f.st.Delivery(bg, f.dead, f.now)
		if err != nil || d.State != record.StateDead {
			t.Fatalf("%s: the delivery was replayed (%v, %v)", when, d.State, err)
		}
	}
	for _, tc := range []struct {
		name   string
		c      *http.Client
		form   url.Values
		origin string
	}{
		{"no token", c, url.Values{}, srv.URL},
		{"wrong token", c, url.Values{"csrf": {token + "x"}}, srv.URL},
		{"another site", c, url.Values{"csrf": {token}}, "https://evil.example"},
		{"no origin or referer", c, url.Values{"csrf": {token}}, ""},
		{"another browser's cookie", client(), url.Values{"csrf": {token}}, srv.URL},
	} {
		status, _, body := post(t, tc.c, target, tc.form, tc.origin)
		if status != http.StatusForbidden || !strings.Contains(body, "Request refused") {
			t.Errorf("%s: %d, want 403\n%s", tc.name, status, body)
		}
		stillDead(tc.name)
	}
	// The same POST from a page of a session of another user is refused too:
	// the token is tied to the user.
	other := New(Options{Store: f.st, Host: f.host, Now: func() time.Time { return f.now }})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+req.Host)
	for _, ck := range c.Jar.Cookies(mustParse(srv.URL + "/ops/")) {
		req.AddCookie(ck)
	}
	other.Serve(rec, req, Request{Base: "/ops", Path: "/deliveries/" + f.dead + "/replay", User: "mallory"})
	if rec.Code != http.StatusForbidden {
		t.Errorf("another user's token: %d, want 403", rec.Code)
	}
	stillDead("another user")
	if f.host.wakes.Load() != 0 {
		t.Fatal("a refused action woke the dispatcher")
	}

	status, loc, body := post(t, c, target, url.Values{"csrf": {token}}, srv.URL)
	if status != http.StatusSeeOther || loc != "/ops/deliveries/"+f.dead+"?replayed=1" {
		t.Fatalf("replay from the page: %d %q\n%s", status, loc, body)
	}
	d, err := f.st.Delivery(bg, f.dead, f.now)
	if err != nil || d.State != record.StateQueued || f.host.wakes.Load() != 1 {
		t.Fatalf("after the replay: %v %v, wakes %d", d.State, err, f.host.wakes.Load())
	}
	// Replaying it again while it waits is refused with a reason.
	if status, _, body := post(t, c, target, url.Values{"csrf": {token}}, srv.URL); status != http.StatusConflict {
		t.Errorf("replay of a waiting delivery: %d\n%s", status, body)
	}
	// GET never changes anything.
	if status, _ := fetch(t, c, target); status != http.StatusMethodNotAllowed {
		t.Errorf("GET of an action: %d, want 405", status)
	}
}

func TestReplayAllDeadLettersOfANetwork(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, "alice", false)
	c := client()
	_, page := fetch(t, c, srv.URL+"/ops/deliveries")
	token := tokenField.FindStringSubmatch(page)[1]
	status, loc, _ := post(t, c, srv.URL+"/ops/networks/meta/replay", url.Values{"csrf": {token}}, srv.URL)
	if status != http.StatusSeeOther {
		t.Fatalf("replay all: %d", status)
	}
	_, page = fetch(t, c, srv.URL+loc)
	if !strings.Contains(page, "1 dead letter(s) of meta queued again") {
		t.Errorf("the page after a replay-all does not say what happened:\n%s", page)
	}
	if d, _ := f.st.Delivery(bg, f.dead, f.now); d.State != record.StateQueued {
		t.Errorf("dead letter of meta is %s after replay-all", d.State)
	}
	if d, _ := f.st.Delivery(bg, f.delivered, f.now); d.State != record.StateDelivered {
		t.Errorf("delivered postback of everflow is %s after replaying meta's dead letters", d.State)
	}
}

func TestTestFireShowsRequestAndAnswer(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t, "alice", false)
	c := client()
	_, page := fetch(t, c, srv.URL+"/ops/networks/everflow")
	token := tokenField.FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {token}, "click_id": {"abc"}, "amount": {"9.99"}, "currency": {"EUR"}, "event": {"purchase"}}
	status, _, body := post(t, c, srv.URL+"/ops/networks/everflow/test", form, srv.URL)
	if status != 200 || !strings.Contains(body, "cid=abc&amp;token=REDACTED") || !strings.Contains(body, "status 200") {
		t.Fatalf("test fire: %d\n%s", status, body)
	}
	if len(f.host.fired) != 1 || f.host.fired[0].Amount != "9.99" || f.host.fired[0].Network != "everflow" {
		t.Fatalf("fired %+v", f.host.fired)
	}
}

func TestOverviewSums(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC)
	h := now.Truncate(time.Hour)
	err := st.AddStats(bg, []store.Stat{
		{Hour: h, Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "purchase", Currency: "USD", Result: "credited", Count: 2, Sum: 2500},
		{Hour: h.Add(-2 * time.Hour), Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "purchase", Currency: "JPY", Result: "uncredited", Count: 1, Sum: 500},
		{Hour: h, Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "purchase", Currency: "USD", Result: "duplicate", Count: 4, Sum: 9999},
		{Hour: h, Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "lead", Result: "held", Count: 1, Sum: 100},
		{Hour: h, Metric: store.StatConversions, Network: "ef", Event: "purchase", Currency: "USD", Result: "credited", Count: 2, Sum: 2500},
		{Hour: h, Metric: store.StatAttempts, Network: "ef", Result: "delivered", Count: 3, Sum: 3 * 15_000},
		{Hour: h, Metric: store.StatAttempts, Network: "ef", Result: "retrying", Count: 1, Sum: 45_000},
		// Two days ago: in 7d and 30d, not in 24h.
		{Hour: h.Add(-48 * time.Hour), Metric: store.StatConversions, Network: store.StatAllNetworks, Event: "purchase", Currency: "USD", Result: "credited", Count: 5, Sum: 5000},
	})
	if err != nil {
		t.Fatal(err)
	}
	host := &testHost{nets: []Network{{Name: "ef"}, {Name: "idle"}}, paused: map[string]time.Time{"ef": now.Add(time.Minute)}}
	ov, err := BuildOverview(bg, st, host, Periods[0], now)
	if err != nil {
		t.Fatal(err)
	}
	if ov.Conversions != 4 || moneyText(ov.Revenue) != "500 JPY, 25.00 USD" {
		t.Errorf("24h: %d conversions, revenue %s; want 4 (duplicates left out) and 500 JPY, 25.00 USD (held left out)", ov.Conversions, moneyText(ov.Revenue))
	}
	if ov.Attempts.Total != 4 || ov.Attempts.SuccessRate != 0.75 || ov.Attempts.MeanLatency != "22.5ms" {
		t.Errorf("attempts: %+v", ov.Attempts)
	}
	if len(ov.Series) != 24 || ov.Series[23].Conversions != 3 || ov.Series[21].Conversions != 1 || ov.Series[23].Delivered != 3 {
		t.Errorf("hourly series: %d buckets, last %+v", len(ov.Series), ov.Series[len(ov.Series)-1])
	}
	if len(ov.Networks) != 2 || ov.Networks[0].Network != "ef" || ov.Networks[0].Conversions != 2 || ov.Networks[0].PausedUntil.IsZero() ||
		moneyText(ov.Networks[0].Revenue) != "25.00 USD" || !ov.Networks[1].Configured || len(ov.Paused) != 1 {
		t.Errorf("networks: %+v, paused %+v", ov.Networks, ov.Paused)
	}
	week, err := BuildOverview(bg, st, host, Periods[1], now)
	if err != nil {
		t.Fatal(err)
	}
	if week.Conversions != 9 || len(week.Series) != 7 || week.Series[4].Conversions != 5 || !week.Since.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("7d: %d conversions, %d buckets since %s, %+v", week.Conversions, len(week.Series), week.Since, week.Series)
	}
}

func moneyText(ms []Money) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.String())
	}
	return strings.Join(s, ", ")
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
