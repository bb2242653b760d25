package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInvalidWebhookValuesAreHeld: an authentic webhook whose values are not
// fit to send (a negative sale, an unknown currency, a 10 KB order ID, an
// amount out of range) is recorded with its problem and sent nowhere.
func TestInvalidWebhookValuesAreHeld(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/pricing": htmlPage(`<a href="https://buy.stripe.com/test_1">Buy</a>`),
	})
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))
	v := visitor(t)
	_, page := get(t, v, "/pricing?clickid=held1")
	ref := page[strings.Index(page, "client_reference_id=")+len("client_reference_id="):]
	ref = ref[:strings.IndexAny(ref, `"&`)]
	for name, edit := range map[string]func(string) string{
		"negative":         func(b string) string { return strings.ReplaceAll(b, `"amount_total":4990`, `"amount_total":-5000`) },
		"unknown currency": func(b string) string { return strings.Replace(b, `"currency":"usd"`, `"currency":"zzz"`, 1) },
		"long order ID": func(b string) string {
			return strings.Replace(b, `"id":"cs_held_long"`, `"id":"cs_`+strings.Repeat("x", 10<<10)+`"`, 1)
		},
		"out of range": func(b string) string { return strings.ReplaceAll(b, `"amount_total":4990`, `"amount_total":1e30`) },
	} {
		sess := "cs_held_" + strings.ReplaceAll(name, " ", "_")
		if name == "long order ID" {
			sess = "cs_held_long"
		}
		body := edit(string(stripeEvent("evt_"+sess, sess, ref, 4990)))
		if status, b := postStripeTo(t, "/hooks/stripe", []byte(body)); status != 200 || !strings.Contains(b, `"postbacks":0`) {
			t.Errorf("%s: %d %s", name, status, b)
		}
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 0 {
		t.Fatalf("invalid orders were sent: %q", got)
	}
	_, b := adminDo(t, "GET", "/postback/conversions", nil)
	if n := strings.Count(string(b), `"held":`); n != 4 {
		t.Fatalf("%d conversions recorded as held, want 4: %s", n, b)
	}
	if strings.Contains(string(b), strings.Repeat("x", 300)) {
		t.Fatal("a 10 KB order ID was stored whole")
	}
}

// TestFailedReloadKeepsRunningConfig: when a new config cannot start (here
// its HTTP server cannot listen), Caddy keeps the running one, and the
// running one keeps tracking, sending and answering the admin API.
func TestFailedReloadKeepsRunningConfig(t *testing.T) {
	good := newNetwork(t)
	other := newNetwork(t)
	up := shop(t, nil)
	dir := t.TempDir()
	mustLoad(t, demoConfig(dir, good.URL, hostPort(up)))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := strings.Replace(demoConfig(dir, other.URL, hostPort(up)), fmt.Sprintf(":%d {", httpPort),
		fmt.Sprintf(":%d {\n}\n\nhttp://%s {\n\trespond ok\n}\n\n:%d {", httpPort, busy.Addr(), httpPort), 1)
	if err := loadCaddyfile(bad); err == nil {
		t.Fatal("a config whose server cannot listen was loaded")
	}
	if status, b := adminDo(t, "GET", "/postback/queue", nil); status != 200 {
		t.Fatalf("admin API after a failed reload: %d %s", status, b)
	}
	v := visitor(t)
	get(t, v, "/?clickid=still1")
	get(t, v, "/thank-you?order=F1&total=5")
	if got := good.waitFor(t, 1, 5*time.Second); len(got) != 1 || !strings.Contains(got[0], "clickid=still1") {
		t.Fatalf("the running config's network got %q", got)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := other.requests(); len(got) != 0 {
		t.Fatalf("the failed config's network got %q", got)
	}
}

// TestProviderNamesIgnoreCase: a provider named in another case is routed.
func TestProviderNamesIgnoreCase(t *testing.T) {
	net := newNetwork(t)
	const token = "gr_token_0123456789abcdef"
	mustLoad(t, fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}"
		}
	}
}

:%d {
	postback {
		webhook /hooks/gumroad Gumroad %s
	}
	respond "site"
}
`, globalHead(), t.TempDir(), net.URL, httpPort, token))
	form := url.Values{"sale_id": {"S-9"}, "price": {"100"}, "currency": {"usd"}, "product_permalink": {"x"}}
	resp, err := http.PostForm(fmt.Sprintf("http://localhost:%d/hooks/gumroad/%s", httpPort, token), form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "recorded") {
		t.Fatalf("a Gumroad ping to a provider named Gumroad: %d %s", resp.StatusCode, b)
	}
}

// TestUnsetEnvironmentIsALoadError: a template or secret naming an unset
// variable fails the load with the variable's name, and no literal
// "{env.…}" ever becomes a key or reaches a network.
func TestUnsetEnvironmentIsALoadError(t *testing.T) {
	t.Setenv("PB_EMPTY", "")
	for name, tc := range map[string]struct{ global, site, want string }{
		"network token": {global: `network meta {
			preset meta_capi
			pixel_id 123
			access_token {env.PB_UNSET_TOKEN}
		}`, want: "PB_UNSET_TOKEN"},
		"url": {global: `network n {
			click_param clickid
			url "https://n.example/{env.PB_EMPTY}/pb?c={click_id}"
		}`, want: "PB_EMPTY"},
		"webhook secret": {site: `webhook /hooks/stripe stripe {env.PB_UNSET_WHSEC}`, want: "PB_UNSET_WHSEC"},
		"cookie secret": {global: `cookie {
			secret {env.PB_UNSET_COOKIE}
		}`, want: "PB_UNSET_COOKIE"},
	} {
		cfg := fmt.Sprintf("{\n%s\tpostback {\n\t\tstorage %s\n\t\t%s\n\t}\n}\n\n:%d {\n\tpostback {\n\t\t%s\n\t}\n\trespond ok\n}\n",
			globalHead(), t.TempDir(), tc.global, httpPort, tc.site)
		err := loadCaddyfile(cfg)
		if err == nil {
			_ = stopCaddy()
			t.Errorf("%s: loaded with an unset variable", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not set") {
			t.Errorf("%s: error %q does not name %s", name, err, tc.want)
		}
	}
}

// TestSecretsNeverShown: secrets taken from the environment, in a URL path,
// a query, a header and a JSON body, echoed back by the network and found
// in a transport error, appear in no admin answer, no test-fire answer and
// no log line.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "sk_live_SECRETvalue12345"
	t.Setenv("PB_SECRET", secret)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "you sent %s %s %s", r.URL, r.Header.Get("X-Account"), b)
	}))
	defer echo.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	up := shop(t, nil)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "caddy.log")
	mustLoad(t, fmt.Sprintf(`{
%s	log {
		output file %s
		level DEBUG
	}
	postback {
		storage %s
		network echo {
			click_param clickid
			preset post
			url "%s/{env.PB_SECRET}/pb?c={click_id}&k={env.PB_SECRET}"
			header X-Account {env.PB_SECRET}
			body "{\"key\":\"{env.PB_SECRET}\",\"order\":\"{order_id}\"}" json
		}
		network down {
			click_param dclick
			url "http://%s/{env.PB_SECRET}/pb?c={click_id}"
		}
		delivery {
			timeout 1s
			retry_base 1h
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
`, globalHead(), logFile, dir, echo.URL, down, httpPort, hostPort(up)))
	v := visitor(t)
	get(t, v, "/?clickid=s1&dclick=d1")
	get(t, v, "/thank-you?order=SEC1&total=10")
	waitQueue(t, 10*time.Second, func(q queueEntry) bool { return q.Running == 0 && q.Queued == 0 })
	var answers []string
	for _, path := range []string{"/postback/deliveries", "/postback/conversions", "/postback/queue"} {
		status, b := adminDo(t, "GET", path, nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, b)
		}
		answers = append(answers, string(b))
	}
	var list struct{ Items []struct{ ID string } }
	_ = json.Unmarshal([]byte(answers[0]), &list)
	for _, d := range list.Items {
		_, b := adminDo(t, "GET", "/postback/deliveries/"+d.ID, nil)
		answers = append(answers, string(b))
	}
	for _, n := range []string{"echo", "down"} {
		_, b := adminDo(t, "POST", "/postback/test", map[string]string{"network": n})
		answers = append(answers, string(b))
	}
	all := strings.Join(answers, "\n")
	if !strings.Contains(all, "you sent") || !strings.Contains(all, "REDACTED") {
		t.Fatalf("the answers do not show the network's echo or the mask: %s", all)
	}
	if strings.Contains(all, secret) || strings.Contains(all, "SECRETvalue") {
		t.Fatalf("an admin answer shows the secret: %s", all)
	}
	// The delivery's log line follows its record in the queue.
	var logs []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs, err = os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(logs), "postback delivered") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log has no delivery line:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(string(logs), "SECRETvalue") {
		t.Fatalf("the log shows the secret:\n%s", logs)
	}
}
