package module_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func adminDo(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+adminAddr+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func adminConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network admnet {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&a={amount}&api_key=s3cr3t"
			header Authorization "Bearer s3cr3t"
		}
		delivery {
			retry_base 50ms
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, upstream)
}

func TestAdminRoutes(t *testing.T) {
	net := newNetwork(t)
	reject := true
	net.status = func(int) int {
		if reject {
			return 400
		}
		return 200
	}
	up := shop(t, nil)
	mustLoad(t, adminConfig(t.TempDir(), net.URL, hostPort(up)))
	before := metricValues(t)

	v := landed(t, "adm1")
	get(t, v, "/thank-you?order=A1&total=10")
	net.waitFor(t, 1, 5*time.Second)

	// The 400 made a dead letter at once.
	status, b := adminDo(t, "GET", "/postback/deliveries?state=dead", nil)
	var dead struct {
		Items []map[string]any `json:"items"`
	}
	if status != 200 || json.Unmarshal(b, &dead) != nil || len(dead.Items) != 1 {
		t.Fatalf("dead letters: %d %s", status, b)
	}
	if strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("admin answer leaks a secret: %s", b)
	}
	if dead.Items[0]["max_age"] != "72h0m0s" {
		t.Errorf("max_age shown as %v, want a duration string", dead.Items[0]["max_age"])
	}
	id := dead.Items[0]["id"].(string)

	// Filters are checked; a wrong method is a 405, as Caddy's own routes.
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/postback/deliveries?state=bogus", 400},
		{"GET", "/postback/deliveries?colour=red", 400},
		{"GET", "/postback/conversions?since=yesterday", 400},
		{"GET", "/postback/conversions?limit=100000", 400},
		{"DELETE", "/postback/deliveries", 405},
		{"GET", "/postback/deliveries/" + id + "/replay", 405},
		{"POST", "/postback/queue", 405},
		{"GET", "/postback/conversions?status=refunded&since=24h", 200},
	} {
		if status, b := adminDo(t, tc.method, tc.path, nil); status != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, b, tc.want)
		}
	}
	if _, b := adminDo(t, "GET", "/postback/webhooks", nil); !strings.Contains(string(b), `"items":[]`) {
		t.Errorf("an empty listing is not []: %s", b)
	}

	reject = false
	if status, b := adminDo(t, "POST", "/postback/deliveries/"+id+"/replay", nil); status != 200 {
		t.Fatalf("replay: %d %s", status, b)
	}
	if got := net.waitFor(t, 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("after replay the network got %q", got)
	}
	status, b = adminDo(t, "GET", "/postback/deliveries/"+id, nil)
	if status != 200 || !strings.Contains(string(b), `"state":"delivered"`) || !strings.Contains(string(b), `"status":400`) {
		t.Fatalf("delivery log: %d %s", status, b)
	}
	status, b = adminDo(t, "GET", "/postback/conversions", nil)
	if status != 200 || !strings.Contains(string(b), `"reason":"last_click`) || !strings.Contains(string(b), `"amount":"10.00"`) {
		t.Fatalf("conversions: %d %s", status, b)
	}
	status, b = adminDo(t, "GET", "/postback/clicks?click_id=adm1", nil)
	if status != 200 || !strings.Contains(string(b), `"network":"admnet"`) || strings.Contains(string(b), `"conversions":[]`) {
		t.Fatalf("click lookup: %d %s", status, b)
	}
	if status, _ := adminDo(t, "POST", "/postback/deliveries/nope/replay", nil); status != 404 {
		t.Errorf("replay of unknown delivery: %d", status)
	}

	// Test fire: the exact request (secrets masked) and the answer.
	status, b = adminDo(t, "POST", "/postback/test", map[string]string{"network": "admnet", "click_id": "T-CLICK", "amount": "10", "order": "T1"})
	if status != 200 {
		t.Fatalf("test fire: %d %s", status, b)
	}
	var tf struct {
		Request struct {
			Method, URL string
			Header      map[string][]string
		}
		Attempt struct {
			Status  int
			Outcome string
		}
	}
	if err := json.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	if tf.Request.Method != "GET" || !strings.Contains(tf.Request.URL, "/pb?c=T-CLICK&o=T1&a=10.00&api_key=REDACTED") ||
		tf.Attempt.Status != 200 || tf.Attempt.Outcome != "delivered" || tf.Request.Header["Authorization"][0] != "REDACTED" {
		t.Fatalf("test fire result: %s", b)
	}
	if status, _ := adminDo(t, "POST", "/postback/test", map[string]string{"network": "nope"}); status != 404 {
		t.Errorf("test fire of an unknown network: %d", status)
	}

	// Metrics in Caddy's registry, labelled by network and outcome only.
	// The collectors live for the process, so compare with the start.
	after := metricValues(t)
	for name, want := range map[string]float64{
		`caddy_postback_clicks_captured_total{network="admnet"}`:                1,
		`caddy_postback_deliveries_total{network="admnet",outcome="dead"}`:      1,
		`caddy_postback_deliveries_total{network="admnet",outcome="delivered"}`: 1,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s rose by %v, want %v", name, got, want)
		}
	}
	_, b = adminDo(t, "GET", "/metrics", nil)
	if strings.Contains(string(b), "adm1") {
		t.Error("a click ID appears in the metrics")
	}

	// Erasure by session cookie value.
	var cookie string
	for _, c := range v.Jar.Cookies(mustURL(t)) {
		if c.Name == "_pbsid" {
			cookie = c.Value
		}
	}
	if status, b := adminDo(t, "DELETE", "/postback/sessions/"+cookie, nil); status != 200 || !strings.Contains(string(b), `"erased":true`) {
		t.Fatalf("erase: %d %s", status, b)
	}
	get(t, v, "/thank-you?order=A2&total=10")
	_, b = adminDo(t, "GET", "/postback/conversions", nil)
	if strings.Contains(string(b), `"A2"`) || strings.Contains(string(b), "adm1") {
		t.Fatalf("an erased session still converts, or its click ID is still shown: %s", b)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 3 {
		t.Fatalf("postbacks after erasure: %q", got)
	}
	if status, _ := adminDo(t, "DELETE", "/postback/sessions/forged", nil); status != 400 {
		t.Errorf("erase with a forged value: %d", status)
	}
}

// metricValues reads the caddy_postback_ series from the admin endpoint.
func metricValues(t *testing.T) map[string]float64 {
	t.Helper()
	status, b := adminDo(t, "GET", "/metrics", nil)
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "caddy_postback_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
