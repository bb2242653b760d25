package module_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// demoConfig is the walking-skeleton setup: one network with a GET
// template, a thank-you rule reading placeholders, a shop upstream.
func demoConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network demo {
			click_param clickid
			url "%s/postback?clickid={click_id}&payout={amount}&txid={order_id}&s1={sub1}"
		}
		session_daily_limit 20
		delivery {
			retry_base 50ms
			retry_max 200ms
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency USD
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, upstream)
}

func TestClickToPostback(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, demoConfig(t.TempDir(), net.URL, hostPort(up)))

	v := visitor(t)
	resp, body := get(t, v, "/?clickid=abc123&sub1=spring")
	if resp.StatusCode != 200 || !strings.Contains(body, "page /") {
		t.Fatalf("landing page: %d %q", resp.StatusCode, body)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"_pbsid=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Secure cookie on plain HTTP: %q", sc)
	}

	get(t, v, "/product")
	for range 3 { // the thank-you page, then two reloads
		if resp, _ := get(t, v, "/thank-you?order=1001&total=49.90"); resp.StatusCode != 200 {
			t.Fatalf("thank-you: %d", resp.StatusCode)
		}
	}
	got := net.waitFor(t, 1, 5*time.Second)
	want := "/postback?clickid=abc123&payout=49.90&txid=1001&s1=spring"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("network received %q, want exactly [%s]", got, want)
	}

	// A second order by the same visitor is a new conversion.
	get(t, v, "/thank-you?order=1002&total=1,234.50")
	got = net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 || !strings.Contains(got[1], "payout=1234.50&txid=1002") {
		t.Fatalf("second order: %q", got)
	}
}

func TestBadInputIsIgnored(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, demoConfig(t.TempDir(), net.URL, hostPort(up)))

	for name, query := range map[string]string{
		"oversized": "clickid=" + strings.Repeat("a", 300),
		"control":   "clickid=abc%0Ddef",
		"non-ascii": "clickid=caf%C3%A9",
		"empty":     "clickid=",
	} {
		v := visitor(t)
		resp, body := get(t, v, "/?"+query)
		if resp.StatusCode != 200 || !strings.Contains(body, "page /") {
			t.Errorf("%s: the page must still be served: %d", name, resp.StatusCode)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("%s click ID got a session cookie: %q", name, sc)
		}
	}

	// A forged cookie is treated as none: no conversion. A real session is
	// in play, so a forgery that passed the signature check would be
	// credited with its click.
	owner := visitor(t)
	get(t, owner, "/?clickid=valid1")
	var valid string
	for _, c := range owner.Jar.Cookies(mustURL(t)) {
		if c.Name == "_pbsid" {
			valid = c.Value
		}
	}
	if len(valid) != 44 {
		t.Fatalf("the visitor's cookie %q", valid)
	}
	flipped := []byte(valid)
	flipped[30] ^= 1 // the MAC, not the ID
	for name, forged := range map[string]string{
		"tampered MAC":    string(flipped),
		"ID without MAC":  valid[:22],
		"ID, MAC cut":     valid[:43],
		"all of one byte": strings.Repeat("A", 44),
	} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/thank-you?order=666&total=1", httpPort), nil)
		req.AddCookie(&http.Cookie{Name: "_pbsid", Value: forged})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 0 {
		t.Fatalf("postbacks for forged cookies: %q", got)
	}
	// The owner's own cookie still works.
	get(t, owner, "/thank-you?order=667&total=1")
	if got := net.waitFor(t, 1, 5*time.Second); len(got) != 1 || !strings.Contains(got[0], "clickid=valid1") {
		t.Fatalf("postbacks for the real session: %q", got)
	}
}

func TestTemplateTypoIsALoadError(t *testing.T) {
	cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		network demo {
			click_param clickid
			url "http://127.0.0.1:1/postback?clickid={clickid}"
		}
	}
}
:%d {
	respond ok
}
`, globalHead(), t.TempDir(), httpPort)
	err := loadCaddyfile(cfg)
	if err == nil || !strings.Contains(err.Error(), "unknown token {clickid}") {
		t.Fatalf("load error = %v, want an unknown-token error", err)
	}
	hostTok := strings.Replace(cfg, "http://127.0.0.1:1/postback?clickid={clickid}", "https://{click_id}.example.com/", 1)
	if err := loadCaddyfile(hostTok); err == nil || !strings.Contains(err.Error(), "scheme or host") {
		t.Fatalf("token in host: %v", err)
	}
}

// TestReloadKeepsQueueAndSendsOnce reloads the running Caddy while
// postbacks are queued and failing: no reload may hit the store lock, and
// once the network answers 200 each postback arrives exactly once.
func TestReloadKeepsQueueAndSendsOnce(t *testing.T) {
	net := newNetwork(t)
	var failing atomic.Bool
	failing.Store(true)
	net.status = func(int) int {
		if failing.Load() {
			return 503
		}
		return 200
	}
	up := shop(t, nil)
	dir := t.TempDir()
	mustLoad(t, demoConfig(dir, net.URL, hostPort(up)))
	v := visitor(t)
	get(t, v, "/?clickid=reload1")
	for i := range 5 {
		get(t, v, fmt.Sprintf("/thank-you?order=R%d&total=5", i))
	}
	net.waitFor(t, 5, 5*time.Second)

	for i := range 3 {
		// A changed config forces a real reload each time.
		cfg := strings.Replace(demoConfig(dir, net.URL, hostPort(up)), "retry_max 200ms", fmt.Sprintf("retry_max %dms", 200+i), 1)
		mustLoad(t, cfg)
		get(t, v, fmt.Sprintf("/thank-you?order=N%d&total=5", i)) // the session survives reloads
	}
	failing.Store(false)
	start := len(net.requests())
	// Every delivery settled: nothing waits or runs, so nothing more can
	// arrive than what the network has counted.
	waitQueueEmpty(t, 10*time.Second)
	ok := map[string]int{}
	for _, r := range net.requests()[start:] {
		ok[r]++
	}
	if len(ok) != 8 {
		t.Fatalf("after the reloads %d distinct postbacks succeeded, want 8: %v", len(ok), ok)
	}
	for r, n := range ok {
		if n != 1 {
			t.Errorf("%s delivered %d times", r, n)
		}
	}
}

func TestRuleWithSeveralEvents(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	cfg := strings.Replace(demoConfig(t.TempDir(), net.URL, hostPort(up)), "conversion purchase {", "conversion purchase ftd {", 1)
	cfg = strings.Replace(cfg, "&s1={sub1}", "&ev={event}", 1)
	mustLoad(t, cfg)
	v := visitor(t)
	get(t, v, "/?clickid=dep1")
	get(t, v, "/thank-you?order=D1&total=100")
	get(t, v, "/thank-you?order=D1&total=100")
	got := net.waitFor(t, 2, 5*time.Second)
	all := strings.Join(got, " ")
	if len(got) != 2 || !strings.Contains(all, "ev=purchase") || !strings.Contains(all, "ev=ftd") {
		t.Fatalf("postbacks %q: want one purchase and one ftd", got)
	}
}

// TestUpstreamDownIsNoConversion: a confirmation page whose upstream fails
// gets Caddy's error answer, and no conversion is recorded.
func TestUpstreamDownIsNoConversion(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	addr := hostPort(up)
	mustLoad(t, demoConfig(t.TempDir(), net.URL, addr))
	v := visitor(t)
	get(t, v, "/?clickid=down1")
	up.Close()
	resp, _ := get(t, v, "/thank-you?order=X1&total=5")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 from Caddy", resp.StatusCode)
	}
	if got := net.waitFor(t, 1, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("postbacks for a failed page: %q", got)
	}
}
