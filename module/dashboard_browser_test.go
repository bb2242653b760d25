package module_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpnetwork "github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The dashboard's browser tests drive a real headless Chromium (the Debian
// package) through the demo Caddyfile, loaded into a real Caddy in this
// process with its ports and storage moved aside.

// chromiumHint says how to get the browser tests to run.
const chromiumHint = "the dashboard's browser tests need Chromium: install the Debian package (apt-get install -y chromium)"

// tab is a browser tab a test drives; its actions fail the test.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// browser starts headless Chromium with an empty profile and returns a tab
// of it; the browser ends with the test.
func browser(t *testing.T) *tab {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(chromiumHint)
		}
		t.Skip("SKIPPED: " + chromiumHint)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first action starts the browser, with no deadline (a deadline on
	// it would stop the browser); each step after it gets one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return &tab{t: t, ctx: ctx}
}

// stepTimeout bounds each browser step.
const stepTimeout = 30 * time.Second

// do runs steps in order.
func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// text returns the visible text of the first element that matches css.
func (b *tab) text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("browser: reading %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// value returns the value of the first input that matches css.
func (b *tab) value(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("browser: reading %s: %v", css, err)
	}
	return s
}

// status navigates to url and returns the answer's status.
func (b *tab) status(url string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
	if err != nil || resp == nil {
		b.t.Fatalf("browser: opening %s: %v", url, err)
	}
	return resp.Status
}

// demoCredentials are the demo's dashboard user and password, as the
// README prints them.
const demoCredentials = "demo:postback-demo"

// signIn makes the browser send the demo's credentials with every request,
// as it does once its user typed them into the basic-auth prompt.
func (b *tab) signIn() {
	b.t.Helper()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(demoCredentials))
	if _, err := chromedp.Call(b.ctx, cdpnetwork.Enable, cdpnetwork.EnableParams{}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, cdpnetwork.SetExtraHTTPHeaders, cdpnetwork.SetExtraHTTPHeadersParams{
		Headers: cdpnetwork.Headers{"Authorization": auth}}); err != nil {
		b.t.Fatal(err)
	}
}

// freeAddrs returns n distinct loopback addresses free now: their
// listeners are open together, so no two are the same port.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

// loadDemo loads examples/Caddyfile as it ships, with its three sites moved
// to test ports, its network pointed at receiver, its storage in a
// temporary directory, and extra appended: site blocks given a free address
// of their own. It returns that address.
func loadDemo(t *testing.T, receiver string, extra func(addr string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	replace := func(old, new string) {
		t.Helper()
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/Caddyfile no longer holds %q; update this test", old)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	replace("\tauto_https off\n", "\tauto_https off\n"+globalHead())
	replace("\tpostback {\n\t\t# storage", fmt.Sprintf("\tpostback {\n\t\tstorage %s\n\t\t# storage", t.TempDir()))
	// The shop's upstream keeps the name localhost: the proxy passes the
	// visitor's Host on, and the shop's site matches it by name.
	addrs := freeAddrs(t, 3)
	replace("http://localhost:8082 {", "http://"+addrs[0]+" {")
	replace("localhost:8082", receiver)
	replace("localhost:8081", strings.Replace(addrs[1], "127.0.0.1", "localhost", 1))
	replace("localhost:8080", fmt.Sprintf("localhost:%d", httpPort))
	replace("root * examples/shop", "root * ../examples/shop")
	if extra != nil {
		cfg += extra(addrs[2])
	}
	mustLoad(t, cfg)
	return addrs[2]
}

func demoURL(path string) string { return fmt.Sprintf("http://localhost:%d%s", httpPort, path) }

func TestDashboardInBrowserShowsTheDemoPurchase(t *testing.T) {
	b := browser(t)
	net := newNetwork(t)
	loadDemo(t, hostPort(net.Server), nil)

	// A visitor lands with a click ID, opens the product and buys.
	b.do(chromedp.Navigate(demoURL("/?clickid=abc123&sub1=spring")),
		chromedp.Click(chromedp.CSS(`a[href="/product"]`)),
		chromedp.Click(chromedp.CSS(`a[href^="/thank-you"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#dashboard`)))
	if thankYou := b.text("body"); !strings.Contains(thankYou, "postback-demo") {
		t.Errorf("the thank-you page does not give the dashboard's demo password:\n%s", thankYou)
	}
	if got := net.waitFor(t, 1, 10*time.Second); len(got) != 1 || !strings.Contains(got[0], "clickid=abc123") || !strings.Contains(got[0], "payout=49.90") {
		t.Fatalf("the network received %v", got)
	}

	// Without the password, Caddy's basic_auth answers before the
	// dashboard (the browser would prompt for it).
	if resp, body := get(t, visitor(t), "/postback/"); resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(body, "Overview") {
		t.Fatalf("the dashboard without the password: %d %q, want 401 from basic_auth", resp.StatusCode, body)
	}

	// The buyer follows the thank-you page's link and signs in: the
	// overview counts the click, the conversion and the delivery.
	b.signIn()
	b.do(chromedp.Click(chromedp.CSS(`#dashboard`)), chromedp.WaitVisible(chromedp.CSS(`#conversions`)))
	// The counters reach the storage every few seconds: wait for them.
	var clicks, conversions, revenue string
	waitFor(t, 15*time.Second, "the overview to count the purchase", func() bool {
		b.do(chromedp.Navigate(demoURL("/postback/?period=24h")))
		clicks, conversions, revenue = b.text("#clicks"), b.text("#conversions"), b.text("#revenue")
		return conversions == "1" && revenue == "49.90 USD"
	})
	if clicks != "1" {
		t.Errorf("the overview counts %s clicks, want 1", clicks)
	}

	// The conversion: the order as money, the decision and the click.
	b.do(chromedp.Click(chromedp.CSS(`a[href$="/postback/conversions"]`)),
		chromedp.Click(chromedp.CSS(`#conversions tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`#order-id`)))
	order, amount, decision, credits := b.text("#order-id"), b.text("#amount"), b.text("#decision"), b.text("#credits")
	if amount != "49.90 USD" || decision == "" || !strings.Contains(credits, "demo") || !strings.Contains(credits, "abc123") {
		t.Errorf("conversion %s: amount %q, decision %q, credits %q", order, amount, decision, credits)
	}

	// Its delivery: delivered, with the attempt's status and the request.
	b.do(chromedp.Click(chromedp.CSS(`#deliveries tbody a`)), chromedp.WaitVisible(chromedp.CSS(`#state`)))
	state, attempts, request := b.text("#state"), b.text("#attempts"), b.text("#request")
	if state != "delivered" || !strings.Contains(attempts, "200") || !strings.Contains(request, "clickid=abc123") {
		t.Errorf("delivery: state %q, attempts %q, request %q", state, attempts, request)
	}

	// The click lookup finds the click and says it converted.
	b.do(chromedp.Navigate(demoURL("/postback/clicks")),
		chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "abc123"),
		chromedp.Submit(chromedp.CSS(`input[name="q"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#clicks`)))
	if lookup := b.text("#clicks"); !strings.Contains(lookup, "abc123") || !strings.Contains(lookup, "yes: "+order) {
		t.Errorf("click lookup: %q", lookup)
	}
}

// waitFor retries check until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDashboardInBrowserReplaysADeadLetter(t *testing.T) {
	b := browser(t)
	net := newNetwork(t)
	var failing atomic.Bool
	failing.Store(true)
	net.status = func(int) int {
		if failing.Load() {
			return http.StatusBadRequest // permanent: a dead letter at once
		}
		return http.StatusOK
	}
	loadDemo(t, hostPort(net.Server), nil)
	v := landed(t, "dead1")
	get(t, v, "/thank-you?order=DEAD-1&total=12.50")
	net.waitFor(t, 1, 10*time.Second)

	// The dead letter is on the deliveries page; the network answers again
	// and the operator replays it from its page.
	failing.Store(false)
	b.signIn()
	b.do(chromedp.Navigate(demoURL("/postback/deliveries?state=dead")),
		chromedp.Click(chromedp.CSS(`#deliveries tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`#replay`)))
	if state, facts := b.text("#state"), b.text("dl.facts"); state != "dead" || !strings.Contains(facts, "rejected by the network (status 400)") {
		t.Errorf("before the replay: state %q\n%s", state, facts)
	}
	b.do(chromedp.Click(chromedp.CSS(`#replay`)), chromedp.WaitVisible(chromedp.CSS(`#replayed`)))
	net.waitFor(t, 2, 10*time.Second)
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#state`)))
	if after, attempts := b.text("#state"), b.text("#attempts"); after != "delivered" || !strings.Contains(attempts, "400") || !strings.Contains(attempts, "200") {
		t.Errorf("after the replay: state %q, attempts %q; want delivered with both attempts", after, attempts)
	}
	if got := net.requests(); len(got) != 2 || !strings.Contains(got[1], "txid=DEAD-1") {
		t.Errorf("the network received %v", got)
	}
}

func TestDashboardInBrowserRefusesCrossSiteAndAnonymous(t *testing.T) {
	b := browser(t)
	net := newNetwork(t)
	net.status = func(int) int { return http.StatusBadRequest }
	// Beside the demo's protected dashboard, one mounted with no
	// authentication at all, as an operator might by mistake.
	anonymous := loadDemo(t, hostPort(net.Server), func(addr string) string {
		return fmt.Sprintf(`
http://%s {
	handle /unprotected/* {
		postback_dashboard {
			prefix /unprotected
		}
	}
}
`, addr)
	})
	v := landed(t, "xsite1")
	get(t, v, "/thank-you?order=XSITE-1&total=5")
	net.waitFor(t, 1, 10*time.Second)
	deadID := onlyDeadLetter(t)

	if status := b.status("http://" + anonymous + "/unprotected/deliveries"); status != http.StatusForbidden {
		t.Errorf("a dashboard with no authentication answered %d, want 403", status)
	}
	if refusal := b.text("body"); !strings.Contains(refusal, "basic_auth") || strings.Contains(refusal, "XSITE-1") {
		t.Errorf("a dashboard with no authentication showed:\n%s", refusal)
	}

	// A page on another site posts the replay form to the dashboard, with
	// the user's credentials in the browser and even the right token: the
	// dashboard refuses it.
	b.signIn()
	b.do(chromedp.Navigate(demoURL("/postback/deliveries/"+deadID)), chromedp.WaitVisible(chromedp.CSS(`#replay`)))
	token := b.value(`input[name="csrf"]`)
	if token == "" {
		t.Fatal("the delivery page has no token")
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="csrf" value="%s"></form>
<script>document.getElementById("f").submit()</script>`, demoURL("/postback/deliveries/"+deadID+"/replay"), token)
	}))
	t.Cleanup(evil.Close)
	// 127.0.0.1 is another site than localhost.
	b.do(chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	if answer := b.text("main"); !strings.Contains(answer, "Request refused") {
		t.Errorf("the cross-site post was answered:\n%s", answer)
	}
	if got := onlyDeadLetter(t); got != deadID {
		t.Errorf("the dead letter changed after a refused post")
	}
}

// onlyDeadLetter returns the ID of the one dead letter, failing otherwise.
func onlyDeadLetter(t *testing.T) string {
	t.Helper()
	status, b := adminDo(t, "GET", "/postback/deliveries?state=dead", nil)
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &page); err != nil || status != 200 || len(page.Items) != 1 {
		t.Fatalf("dead letters: %d %s", status, b)
	}
	return page.Items[0].ID
}
