package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// intakeToken is the endpoint's token in these tests.
const intakeToken = "intake_0f1e2d3c4b5a69788796a5b4"

// endpointConfig has an affiliate network and an ad platform (told of
// every conversion it has a click for), a relay network whose clicks are
// never captured here, and endpoints guarded by a token, by a token in a
// header with a relay, by an allowlist, and by an allowlist that includes
// loopback. Loopback is a trusted proxy, so X-Forwarded-For names the
// client.
func endpointConfig(storage, netURL, relayURL, upstream string) string {
	return fmt.Sprintf(`{
%s	servers {
		trusted_proxies static 127.0.0.1/32 ::1/128
	}
	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/aff?c={click_id}&o={order_id}&a={amount}&cur={currency}&st={status}&offer={value.offer_id}&p={value.payout}&g={value.goal}"
		}
		network ads {
			click_param gclid
			role platform
			url "%s/ads?g={click_id}&o={order_id}&ev={event}"
		}
		network relaynet {
			click_param rn_never_captured
			url "%s/relay?c={click_id}&o={order_id}&ev={event}"
		}
		delivery {
			retry_base 50ms
			retry_max 200ms
		}
	}
}

:%d {
	postback {
		endpoint /postback/in {
			token %s
			value offer_id 42
			value goal {http.request.uri.query.offer_goal}
		}
		endpoint /postback/relay {
			token %s header X-Postback-Secret
			relay relaynet
			event lead
		}
		endpoint /postback/office {
			allow 10.0.0.0/8
		}
		endpoint /postback/crm {
			token %s path
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, netURL, relayURL, httpPort, intakeToken, intakeToken, intakeToken, upstream)
}

// report sends a conversion report and returns the status and the JSON
// answer.
func report(t *testing.T, method, target string, header map[string]string, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", httpPort, target), rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans map[string]any
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatalf("%s %s: %d, answer not JSON: %q", method, target, resp.StatusCode, b)
	}
	return resp.StatusCode, ans
}

// conversionsFrom lists the recorded conversions of a source.
func conversionsFrom(t *testing.T, source string) []map[string]any {
	t.Helper()
	status, b := adminDo(t, "GET", "/postback/conversions?source="+source, nil)
	if status != 200 {
		t.Fatalf("conversions: %d %s", status, b)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestEndpointCreditsCapturedClick: a backend reports an order for a
// click ID captured on a landing URL; the affiliate network is credited
// and the ad platform with a click is told, once each; a repeat is a
// duplicate and sends nothing more.
func TestEndpointCreditsCapturedClick(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, endpointConfig(t.TempDir(), net.URL, net.URL, hostPort(up)))

	v := visitor(t)
	get(t, v, "/landing?clickid=AFF-1&gclid=Cj0KCQ_g1")

	target := "/postback/in?token=" + intakeToken + "&click_id=AFF-1&order_id=1001&amount=49.90&currency=usd&payout=12&offer_goal=upsell"
	status, ans := report(t, "GET", target, nil, "")
	if status != 200 || ans["status"] != "recorded" || ans["postbacks"] != 2.0 {
		t.Fatalf("report: %d %v", status, ans)
	}
	got := net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("postbacks %q", got)
	}
	var aff, ads string
	for _, g := range got {
		switch {
		case strings.HasPrefix(g, "/aff?"):
			aff = g
		case strings.HasPrefix(g, "/ads?"):
			ads = g
		}
	}
	if aff != "/aff?c=AFF-1&o=1001&a=49.90&cur=USD&st=approved&offer=42&p=12.00&g=upsell" {
		t.Errorf("affiliate postback %q", aff)
	}
	if ads != "/ads?g=Cj0KCQ_g1&o=1001&ev=purchase" {
		t.Errorf("platform postback %q", ads)
	}

	// The same report again, and once more by POST form: duplicates.
	status, ans = report(t, "GET", target, nil, "")
	if status != 200 || ans["status"] != "duplicate" || ans["postbacks"] != 0.0 {
		t.Fatalf("repeat: %d %v", status, ans)
	}
	status, ans = report(t, "POST", "/postback/in", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"token="+intakeToken+"&clickid=AFF-1&txn_id=1001&amount=49.90&currency=USD")
	if status != 200 || ans["status"] != "duplicate" {
		t.Fatalf("repeat by form: %d %v", status, ans)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 2 {
		t.Fatalf("a repeat sent more: %q", got)
	}

	// The visitor's session reference works as well as a click ID, here
	// from a JSON body with the token in the header.
	var ref string
	for _, c := range v.Jar.Cookies(mustURL(t)) {
		if c.Name == "_pbsid" {
			ref = c.Value
		}
	}
	if ref == "" {
		t.Fatal("no session cookie")
	}
	status, ans = report(t, "POST", "/postback/in", map[string]string{"Content-Type": "application/json", "X-Postback-Token": intakeToken},
		`{"session":"`+ref+`","order_id":"1002","amount":5,"currency":"EUR","event":"Lead"}`)
	if status != 200 || ans["status"] != "recorded" || ans["postbacks"] != 2.0 {
		t.Fatalf("report by session: %d %v", status, ans)
	}
	got = net.waitFor(t, 4, 5*time.Second)
	if len(got) != 4 || !strings.Contains(strings.Join(got, " "), "/aff?c=AFF-1&o=1002&a=5.00&cur=EUR&st=approved&offer=42&p=&g=") {
		t.Fatalf("postbacks %q", got)
	}

	// A refund reaches the networks credited with the sale.
	status, ans = report(t, "GET", "/postback/in?token="+intakeToken+"&order_id=1001&status=refunded", nil, "")
	if status != 200 || ans["status"] != "recorded" {
		t.Fatalf("refund: %d %v", status, ans)
	}
	got = net.waitFor(t, 5, 5*time.Second)
	if len(got) != 5 || !strings.Contains(strings.Join(got, " "), "/aff?c=AFF-1&o=1001&a=49.90&cur=USD&st=refunded&offer=42&p=&g=") {
		t.Fatalf("refund postbacks %q", got)
	}

	// The webhook log shows the reports under provider "endpoint", and
	// the metrics count them; neither shows the token.
	_, b := adminDo(t, "GET", "/postback/webhooks?provider=endpoint", nil)
	if !strings.Contains(string(b), `"result":"recorded"`) || !strings.Contains(string(b), `"result":"duplicate"`) {
		t.Errorf("webhook log %s", b)
	}
	if strings.Contains(string(b), intakeToken) {
		t.Error("the webhook log shows the token")
	}
	if m := metricValues(t); m[`caddy_postback_webhooks_total{provider="endpoint",result="recorded"}`] < 3 {
		t.Errorf("metrics %v", m)
	}
	if convs := conversionsFrom(t, "endpoint"); len(convs) != 3 {
		t.Errorf("%d conversions from the endpoint, want 3", len(convs))
	}
}

// TestEndpointRefuses: a wrong or missing token is answered 401, bad input
// 400 with a reason, another method 405; none of them writes a conversion
// or a postback, and no answer or log entry shows the token.
func TestEndpointRefuses(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, endpointConfig(t.TempDir(), net.URL, net.URL, hostPort(up)))
	v := visitor(t)
	get(t, v, "/landing?clickid=AFF-2")

	wrong := intakeToken[:len(intakeToken)-1] + "x"
	tests := []struct {
		name   string
		method string
		target string
		header map[string]string
		body   string
		status int
		reason string
	}{
		{"wrong token", "GET", "/postback/in?token=" + wrong + "&click_id=AFF-2&order_id=2001", nil, "", 401, "missing or wrong token"},
		{"no token", "GET", "/postback/in?click_id=AFF-2&order_id=2001", nil, "", 401, "missing or wrong token"},
		{"token in the wrong header", "GET", "/postback/in?click_id=AFF-2&order_id=2001", map[string]string{"X-Postback-Secret": intakeToken}, "", 401, "missing or wrong token"},
		{"wrong path token", "GET", "/postback/crm/" + wrong + "?click_id=AFF-2&order_id=2001", nil, "", 401, "missing or wrong token"},
		{"no path token", "GET", "/postback/crm?click_id=AFF-2&order_id=2001", nil, "", 401, "missing or wrong token"},
		{"missing order ID", "GET", "/postback/in?token=" + intakeToken + "&click_id=AFF-2&amount=5", nil, "", 400, "no order ID: send it as order_id (or txn_id, txid, transaction_id)"},
		{"unparseable amount", "GET", "/postback/in?token=" + intakeToken + "&click_id=AFF-2&order_id=2001&amount=12abc", nil, "", 400, `amount "12abc" is not a number`},
		{"bad currency", "GET", "/postback/in?token=" + intakeToken + "&click_id=AFF-2&order_id=2001&amount=5&currency=dollars", nil, "", 400, `currency "dollars" is not an ISO 4217 code`},
		{"bad JSON", "POST", "/postback/in", map[string]string{"Content-Type": "application/json", "X-Postback-Token": intakeToken}, `{"order_id":`, 400, "not a JSON object"},
		{"PUT", "PUT", "/postback/in?token=" + intakeToken + "&order_id=2001", nil, "", 405, "send conversions with GET or POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ans := report(t, tt.method, tt.target, tt.header, tt.body)
			errText, _ := ans["error"].(string)
			if status != tt.status || !strings.Contains(errText, tt.reason) {
				t.Errorf("%d %v, want %d with %q", status, ans, tt.status, tt.reason)
			}
			if strings.Contains(fmt.Sprint(ans), intakeToken) || strings.Contains(fmt.Sprint(ans), wrong) {
				t.Errorf("answer shows a token: %v", ans)
			}
		})
	}
	if convs := conversionsFrom(t, "endpoint"); len(convs) != 0 {
		t.Errorf("refused reports recorded %d conversions", len(convs))
	}
	waitQueueEmpty(t, 5*time.Second)
	if status, b := adminDo(t, "GET", "/postback/deliveries", nil); status != 200 || !strings.Contains(string(b), `"items":[]`) {
		t.Errorf("deliveries after refused reports: %d %s", status, b)
	}
	_, b := adminDo(t, "GET", "/postback/webhooks?provider=endpoint&result=rejected", nil)
	if !strings.Contains(string(b), "missing or wrong token") {
		t.Errorf("webhook log %s", b)
	}
	if strings.Contains(string(b), intakeToken[8:]) || strings.Contains(string(b), wrong[8:]) {
		t.Errorf("the webhook log shows a token: %s", b)
	}

	// The right token in the path is taken.
	status, ans := report(t, "GET", "/postback/crm/"+intakeToken+"?click_id=AFF-2&order_id=2001", nil, "")
	if status != 200 || ans["status"] != "recorded" {
		t.Fatalf("path token: %d %v", status, ans)
	}
	if got := net.waitFor(t, 1, 5*time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "/aff?c=AFF-2&o=2001") {
		t.Fatalf("postbacks %q", got)
	}
}

// TestEndpointAllowlist: an allowlisted endpoint takes reports from the
// networks it lists, by the client address Caddy determined: through a
// trusted proxy, the one X-Forwarded-For names.
func TestEndpointAllowlist(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	storage := t.TempDir()
	mustLoad(t, endpointConfig(storage, net.URL, net.URL, hostPort(up)))
	v := visitor(t)
	get(t, v, "/landing?clickid=AFF-3")

	status, ans := report(t, "GET", "/postback/office?click_id=AFF-3&order_id=3001", nil, "")
	if status != 403 {
		t.Fatalf("from loopback: %d %v", status, ans)
	}
	status, ans = report(t, "GET", "/postback/office?click_id=AFF-3&order_id=3001", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "")
	if status != 403 || !strings.Contains(ans["error"].(string), "203.0.113.9 is outside the allowlist") {
		t.Fatalf("from outside: %d %v", status, ans)
	}
	if convs := conversionsFrom(t, "endpoint"); len(convs) != 0 {
		t.Fatalf("a refused report recorded %d conversions", len(convs))
	}
	status, ans = report(t, "GET", "/postback/office?click_id=AFF-3&order_id=3001", map[string]string{"X-Forwarded-For": "10.20.30.40"}, "")
	if status != 200 || ans["status"] != "recorded" {
		t.Fatalf("from the office: %d %v", status, ans)
	}
	if got := net.waitFor(t, 1, 5*time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "/aff?c=AFF-3&o=3001") {
		t.Fatalf("postbacks %q", got)
	}

	// Without trusted proxies, X-Forwarded-For is the client's word and
	// counts for nothing.
	mustLoad(t, strings.Replace(endpointConfig(storage, net.URL, net.URL, hostPort(up)), "trusted_proxies static 127.0.0.1/32 ::1/128", "", 1))
	status, ans = report(t, "GET", "/postback/office?click_id=AFF-3&order_id=3002", map[string]string{"X-Forwarded-For": "10.20.30.40"}, "")
	if status != 403 {
		t.Fatalf("forwarded address believed from an untrusted client: %d %v", status, ans)
	}
}

// TestEndpointBase64ClickID: a standard-base64 click ID put unescaped into
// a landing URL, and reported unescaped to the endpoint, reaches the
// network byte for byte.
func TestEndpointBase64ClickID(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, endpointConfig(t.TempDir(), net.URL, net.URL, hostPort(up)))

	v := visitor(t)
	if resp, _ := get(t, v, "/landing?clickid=ab+c/d=="); resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("click not captured")
	}
	status, ans := report(t, "GET", "/postback/in?token="+intakeToken+"&click_id=ab+c/d==&order_id=4001&amount=10", nil, "")
	if status != 200 || ans["status"] != "recorded" {
		t.Fatalf("report: %d %v", status, ans)
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("postbacks %q", got)
	}
	u, _ := url.Parse(got[0])
	if c := u.Query().Get("c"); c != "ab+c/d==" {
		t.Errorf("network got click ID %q (%s), want ab+c/d==", c, got[0])
	}
	if !strings.HasPrefix(u.RawQuery, "c=ab%2Bc%2Fd%3D%3D&") {
		t.Errorf("click ID not escaped for the query: %s", got[0])
	}
	// The escaped form finds the same click.
	status, ans = report(t, "GET", "/postback/in?token="+intakeToken+"&click_id=ab%2Bc%2Fd%3D%3D&order_id=4002", nil, "")
	if status != 200 || ans["status"] != "recorded" {
		t.Fatalf("escaped report: %d %v", status, ans)
	}
}

// TestEndpointUnmatchedAndRelay: a click ID never captured here is
// answered 202 "unmatched" and recorded credited to nobody; an endpoint
// with a relay network sends that network a postback with the click ID,
// retried until it is taken, once.
func TestEndpointUnmatchedAndRelay(t *testing.T) {
	net := newNetwork(t)
	relay := newNetwork(t)
	relay.status = func(n int) int {
		if n == 1 {
			return 503 // the first attempt fails: the postback is retried
		}
		return 200
	}
	up := shop(t, nil)
	mustLoad(t, endpointConfig(t.TempDir(), net.URL, relay.URL, hostPort(up)))

	status, ans := report(t, "GET", "/postback/in?token="+intakeToken+"&click_id=NEVER-SEEN&order_id=5001&amount=20", nil, "")
	if status != 202 || ans["status"] != "unmatched" || ans["postbacks"] != 0.0 ||
		!strings.Contains(ans["reason"].(string), "click ID not captured here") {
		t.Fatalf("unmatched: %d %v", status, ans)
	}
	convs := conversionsFrom(t, "endpoint")
	if len(convs) != 1 || fmt.Sprint(convs[0]["credits"]) != "[]" {
		t.Fatalf("unmatched report recorded as %v", convs)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 0 {
		t.Fatalf("an unmatched report sent %q", got)
	}

	hdr := map[string]string{"X-Postback-Secret": intakeToken}
	status, ans = report(t, "GET", "/postback/relay?clickid=TRK-77+x&order_id=5002", hdr, "")
	if status != 202 || ans["status"] != "relayed" || ans["relayed_to"] != "relaynet" || ans["postbacks"] != 1.0 {
		t.Fatalf("relay: %d %v", status, ans)
	}
	got := relay.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 || got[0] != got[1] || got[1] != "/relay?c=TRK-77%2Bx&o=5002&ev=lead" {
		t.Fatalf("relayed postbacks %q, want one failed attempt and its retry", got)
	}
	status, ans = report(t, "GET", "/postback/relay?clickid=TRK-77+x&order_id=5002", hdr, "")
	if status != 200 || ans["status"] != "duplicate" {
		t.Fatalf("repeated relay: %d %v", status, ans)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := relay.requests(); len(got) != 2 {
		t.Fatalf("a repeated relay sent more: %q", got)
	}
	if got := net.requests(); len(got) != 0 {
		t.Fatalf("other networks were sent %q", got)
	}
}

// TestEndpointStorageUnavailable: while the storage refuses writes, a
// report is answered 503 with Retry-After, so that the sender retries.
func TestEndpointStorageUnavailable(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	// A reserve larger than any test machine's disk: every write refused.
	mustLoad(t, endpointConfig("badger "+t.TempDir()+" {\n\t\t\tmin_free 1TiB\n\t\t}", net.URL, net.URL, hostPort(up)))
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/postback/in?token=%s&click_id=X1&order_id=6001", httpPort, intakeToken), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "storage unavailable") {
		t.Fatalf("%d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
