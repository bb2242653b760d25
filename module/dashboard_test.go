package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dashboardConfig mounts the dashboard three ways: under handle with the
// default prefix, under handle_path (which strips its prefix), and under
// handle with a prefix of its own; all serve openly, which these tests of
// mounting allow.
func dashboardConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network dashnet {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&a={amount}&api_key=s3cr3t-value"
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency EUR
		}
	}
	handle /postback/* {
		postback_dashboard {
			allow_unauthenticated
		}
	}
	handle_path /tracker/* {
		postback_dashboard {
			allow_unauthenticated
		}
	}
	handle /ops/tracking/* {
		postback_dashboard {
			prefix /ops/tracking
			allow_unauthenticated
		}
	}
	handle /elsewhere/* {
		postback_dashboard {
			allow_unauthenticated
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, upstream)
}

var linkAttr = regexp.MustCompile(`(?:href|action|src)="(/[^"]*)"`)

func TestDashboardMountedUnderAnyPrefix(t *testing.T) {
	net := newNetwork(t)
	mustLoad(t, dashboardConfig(t.TempDir(), net.URL, hostPort(shop(t, nil))))
	v := landed(t, "mount1")
	get(t, v, "/thank-you?order=M-1&total=19.99")
	net.waitFor(t, 1, 10*time.Second)

	for _, base := range []string{"/postback", "/tracker", "/ops/tracking"} {
		resp, body := get(t, visitor(t), base+"/conversions")
		if resp.StatusCode != 200 || !strings.Contains(body, "M-1") || !strings.Contains(body, "19.99 EUR") {
			t.Errorf("%s/conversions: %d\n%s", base, resp.StatusCode, body)
			continue
		}
		links := linkAttr.FindAllStringSubmatch(body, -1)
		if len(links) < 5 {
			t.Errorf("%s/conversions: only %d links", base, len(links))
		}
		for _, m := range links {
			if !strings.HasPrefix(m[1], base+"/") {
				t.Errorf("%s/conversions links to %s, outside its mount point", base, m[1])
			}
		}
		// The network's template shows with its secret masked.
		_, page := get(t, visitor(t), base+"/networks/dashnet")
		if strings.Contains(page, "s3cr3t-value") || !strings.Contains(page, "api_key=REDACTED") {
			t.Errorf("%s/networks/dashnet shows the template unmasked or not at all", base)
		}
	}
	// A mount point the dashboard was not told of is a clear 404.
	if resp, _ := get(t, visitor(t), "/elsewhere/conversions"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("dashboard under an unconfigured prefix: %d, want 404", resp.StatusCode)
	}
}

func TestAdminStatsRoute(t *testing.T) {
	net := newNetwork(t)
	mustLoad(t, dashboardConfig(t.TempDir(), net.URL, hostPort(shop(t, nil))))
	v := landed(t, "stats1")
	get(t, v, "/thank-you?order=S-1&total=10.50")
	net.waitFor(t, 1, 10*time.Second)

	type overview struct {
		Period      string `json:"period"`
		Clicks      int64  `json:"clicks"`
		Conversions int64  `json:"conversions"`
		Revenue     []struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"revenue"`
		Attempts struct {
			Total       int64   `json:"total"`
			SuccessRate float64 `json:"success_rate"`
		} `json:"attempts"`
		Networks []struct {
			Network    string `json:"network"`
			Configured bool   `json:"configured"`
		} `json:"networks"`
	}
	// The counters reach the storage every few seconds.
	var ov overview
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, b := adminDo(t, "GET", "/postback/stats?period=7d", nil)
		if status != 200 {
			t.Fatalf("stats: %d %s", status, b)
		}
		if err := json.Unmarshal(b, &ov); err != nil {
			t.Fatal(err)
		}
		if ov.Conversions == 1 && ov.Attempts.Total == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never counted the purchase: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ov.Period != "7d" || ov.Clicks != 1 || len(ov.Revenue) != 1 || ov.Revenue[0].Amount != "10.50" || ov.Revenue[0].Currency != "EUR" ||
		ov.Attempts.SuccessRate != 1 || len(ov.Networks) != 1 || !ov.Networks[0].Configured {
		t.Errorf("stats: %+v", ov)
	}
	for path, want := range map[string]int{
		"/postback/stats":            200, // 24h by default
		"/postback/stats?period=1y":  400,
		"/postback/stats?from=today": 400,
	} {
		if status, b := adminDo(t, "GET", path, nil); status != want {
			t.Errorf("GET %s: %d %s, want %d", path, status, b, want)
		}
	}
	if status, _ := adminDo(t, "POST", "/postback/stats", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /postback/stats: %d, want 405", status)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestDashboardTestFire(t *testing.T) {
	net := newNetwork(t)
	mustLoad(t, dashboardConfig(t.TempDir(), net.URL, hostPort(shop(t, nil))))
	browser := visitor(t)
	_, page := get(t, browser, "/postback/networks/dashnet")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the network page has no test-fire form:\n%s", page)
	}
	form := url.Values{"csrf": {m[1]}, "click_id": {"tf-click"}, "amount": {"3.50"}, "currency": {"EUR"}, "order": {"TF-1"}, "event": {"purchase"}}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/postback/networks/dashnet/test", httpPort), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", fmt.Sprintf("http://localhost:%d", httpPort))
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	// The page shows the exact request, its secret masked, and the answer.
	if resp.StatusCode != 200 || !strings.Contains(body, "/pb?c=tf-click&amp;o=TF-1&amp;a=3.50&amp;api_key=REDACTED") ||
		!strings.Contains(body, "status 200") || strings.Contains(body, "s3cr3t-value") {
		t.Fatalf("test fire: %d\n%s", resp.StatusCode, body)
	}
	// The network got it, with the secret, once, and nothing was queued.
	if got := net.requests(); len(got) != 1 || !strings.Contains(got[0], "c=tf-click") || !strings.Contains(got[0], "api_key=s3cr3t-value") {
		t.Fatalf("the network received %v", got)
	}
	if status, b := adminDo(t, "GET", "/postback/deliveries", nil); status != 200 || !strings.Contains(string(b), `"items":[]`) {
		t.Errorf("a test fire queued a delivery: %s", b)
	}
}
