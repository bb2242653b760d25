package module_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// loadRecipe adapts an examples/recipes Caddyfile with the given
// environment (Caddyfile {$VAR} substitution), points its storage at a
// temporary directory and its admin endpoint at the test's, and loads it.
func loadRecipe(t *testing.T, name string, env map[string]string) {
	t.Helper()
	env["SITE_ADDRESS"] = fmt.Sprintf(":%d", httpPort)
	for k, v := range env {
		t.Setenv(k, v)
	}
	src, err := os.ReadFile(filepath.Join("..", "examples", "recipes", name))
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": name})
	if err != nil {
		t.Fatalf("adapting %s: %v", name, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["admin"] = map[string]any{"listen": adminAddr, "config": map[string]any{"persist": false}}
	apps := cfg["apps"].(map[string]any)
	pb := apps["postback"].(map[string]any)
	pb["storage"] = map[string]any{"engine": "badger", "dir": t.TempDir()}
	out, _ := json.Marshal(cfg)
	if err := caddy.Load(out, true); err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

func hmacSum(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

func post(t *testing.T, path string, body []byte, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d%s", httpPort, path), bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Logf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func TestRecipeWooCommercePage(t *testing.T) {
	net := newNetwork(t)
	woo := testdata(t, "woocommerce-thankyou.html")
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/checkout/order-received/727/": htmlPage(woo),
		"/": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			if r.URL.Query().Get("order-received") == "728" { // plain permalinks
				_, _ = w.Write(bytes.ReplaceAll(woo, []byte("'727'"), []byte("'728'")))
				return
			}
			_, _ = io.WriteString(w, "<html>home</html>")
		},
	})
	loadRecipe(t, "woocommerce.Caddyfile", map[string]string{
		"IMPACT_ACCOUNT_SID": "IRabc123", "IMPACT_AUTH_TOKEN": "tok", "IMPACT_URL": net.URL, "UPSTREAM": hostPort(up),
	})
	v := visitor(t)
	get(t, v, "/?irclickid=Ir-Click_1")
	get(t, v, "/checkout/order-received/727/?key=wc_order_58d2d042d1d")
	v2 := visitor(t)
	get(t, v2, "/?irclickid=Ir-Click_2")
	get(t, v2, "/?page_id=8&order-received=728&key=wc_order_yT7P9l8zHqRVZ")
	got := net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("postbacks %q", got)
	}
	net.mu.Lock()
	defer net.mu.Unlock()
	// The two postbacks may arrive in either order.
	want := map[string]bool{"ClickId=Ir-Click_1 OrderId=727": false, "ClickId=Ir-Click_2 OrderId=728": false}
	for i, r := range net.hits {
		body := net.bodies[i]
		if r.Method != "POST" || r.URL.Path != "/Advertisers/IRabc123/Conversions" {
			t.Errorf("impact request %d: %s %s", i, r.Method, r.URL.Path)
		}
		if user, pass, ok := r.BasicAuth(); !ok || user != "IRabc123" || pass != "tok" {
			t.Errorf("impact request %d: basic auth %q %q", i, user, pass)
		}
		for w := range want {
			click, order, _ := strings.Cut(w, " ")
			if strings.Contains(body, click) && strings.Contains(body, order) {
				want[w] = true
			}
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no impact conversion with %s in %q", w, net.bodies)
		}
	}
}

func TestRecipeMagento(t *testing.T) {
	net := newNetwork(t)
	page := testdata(t, "magento-success.html")
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/checkout/onepage/success/": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			_, _ = w.Write(page)
		},
	})
	loadRecipe(t, "magento.Caddyfile", map[string]string{"EVERFLOW_URL": net.URL, "UPSTREAM": hostPort(up)})
	v := visitor(t)
	get(t, v, "/?_ef_transaction_id=0123456789abcdef0123456789abcdef")
	get(t, v, "/checkout/onepage/success/")
	get(t, v, "/checkout/onepage/success/") // reload
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("postbacks %q", got)
	}
	q, _ := url.ParseQuery(strings.SplitN(got[0], "?", 2)[1])
	if q.Get("nid") != "123" || q.Get("transaction_id") != "0123456789abcdef0123456789abcdef" || q.Get("amount") != "1234.50" || q.Get("order_id") != "000000042" {
		t.Fatalf("everflow postback %s", got[0])
	}
}

func TestRecipeGA4SiteWithMeta(t *testing.T) {
	net := newNetwork(t)
	page := testdata(t, "gtag-purchase.html")
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/order/complete": htmlPage(page),
	})
	loadRecipe(t, "ga4-site.Caddyfile", map[string]string{
		"VOLUUM_URL": net.URL, "META_URL": net.URL, "META_PIXEL_ID": "1234567890", "META_TOKEN": "EAAtoken", "UPSTREAM": hostPort(up),
	})
	v := visitor(t)
	get(t, v, "/?clickid=VOL123&fbclid=IwAR2F4-dbP0l7Mn1IawQQ")
	get(t, v, "/order/complete")
	got := net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("postbacks %q", got)
	}
	net.mu.Lock()
	defer net.mu.Unlock()
	var sawVoluum, sawMeta bool
	for i, r := range net.hits {
		switch {
		case r.URL.Path == "/postback":
			sawVoluum = strings.Contains(r.URL.RawQuery, "cid=VOL123") && strings.Contains(r.URL.RawQuery, "txid=T_12345")
		case r.URL.Path == "/v21.0/1234567890/events":
			var body struct {
				Data []struct {
					EventName string `json:"event_name"`
					EventID   string `json:"event_id"`
					UserData  struct {
						Fbc string `json:"fbc"`
					} `json:"user_data"`
					CustomData struct {
						Currency string          `json:"currency"`
						Value    json.RawMessage `json:"value"`
					} `json:"custom_data"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(net.bodies[i]), &body); err != nil || len(body.Data) != 1 {
				t.Fatalf("meta body %q: %v", net.bodies[i], err)
			}
			d := body.Data[0]
			sawMeta = d.EventName == "Purchase" && d.EventID != "" && string(d.CustomData.Value) == "12.00" &&
				regexp.MustCompile(`^fb\.1\.\d{13}\.IwAR2F4-dbP0l7Mn1IawQQ$`).MatchString(d.UserData.Fbc)
			if !sawMeta {
				t.Errorf("meta event %+v", d)
			}
		}
	}
	if !sawVoluum || !sawMeta {
		t.Fatalf("voluum %v meta %v: %q", sawVoluum, sawMeta, got)
	}
}

func TestRecipeJSONAPI(t *testing.T) {
	net := newNetwork(t)
	spa := testdata(t, "spa-order.json")
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/api/checkout/complete": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(spa)
		},
	})
	loadRecipe(t, "json-api.Caddyfile", map[string]string{"PARTNER_URL": net.URL, "UPSTREAM": hostPort(up)})
	v := visitor(t)
	get(t, v, "/?ref=partner-42")
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/api/checkout/complete", httpPort), strings.NewReader(`{"cart":"c1"}`))
	resp, err := v.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/conversion?ref=partner-42&order=ord_01HV6QZ8K3M2&amount=123.95&currency=EUR" {
		t.Fatalf("postbacks %q", got)
	}
}

func TestRecipeStripePaymentLinks(t *testing.T) {
	net := newNetwork(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte(`<!doctype html><html><body>
<h1>Course</h1><a class="buy" href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA">Buy for $49.90</a></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	loadRecipe(t, "stripe-payment-links.Caddyfile", map[string]string{
		"PS_URL": net.URL, "SITE_ROOT": root, "STRIPE_WEBHOOK_SECRET": stripeSecret,
	})
	v := visitor(t)
	_, page := get(t, v, "/?ps_xid=PSX1")
	m := regexp.MustCompile(`client_reference_id=([A-Za-z0-9_-]+)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("payment link not decorated: %s", page)
	}
	body := stripeEvent("evt_recipe", "cs_recipe", m[1], 4990)
	resp := func() int {
		status, _ := postStripeTo(t, "/.well-known/postback/stripe", body)
		return status
	}()
	if resp != 200 {
		t.Fatalf("webhook: %d", resp)
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/api/v2/track?xid=PSX1&order=cs_recipe&amount=4990&currency=USD" {
		t.Fatalf("postbacks %q", got)
	}
}

func TestRecipeLemonSqueezy(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/": htmlPage(`<a href="https://mystore.lemonsqueezy.com/checkout/buy/6e5c0b1d?embed=1">Buy</a>`),
	})
	const secret = "ls_signing_secret"
	loadRecipe(t, "lemonsqueezy.Caddyfile", map[string]string{"KEITARO_URL": net.URL, "LS_SIGNING_SECRET": secret, "UPSTREAM": hostPort(up)})
	v := visitor(t)
	_, page := get(t, v, "/?subid=KT-sub-1")
	m := regexp.MustCompile(`embed=1&amp;checkout%5Bcustom%5D%5Bpb_session%5D=([A-Za-z0-9_-]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("checkout link not decorated: %s", page)
	}
	send := func(event, status string) {
		body := []byte(fmt.Sprintf(`{"meta":{"event_name":%q,"custom_data":{"pb_session":%q}},"data":{"type":"orders","id":"5501","attributes":{"identifier":"104e18a2","order_number":5501,"user_email":"kim@example.org","currency":"USD","total":1199,"refunded_amount":1199,"status":%q}}}`, event, m[1], status))
		if post(t, "/hooks/lemonsqueezy", body, map[string]string{
			"Content-Type": "application/json", "X-Event-Name": event, "X-Signature": hex.EncodeToString(hmacSum(secret, body)),
		}) != 200 {
			t.Fatalf("%s webhook refused", event)
		}
	}
	send("order_created", "paid")
	send("order_refunded", "refunded")
	got := net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("postbacks %q", got)
	}
	// The two postbacks may arrive in either order.
	sale, refund := got[0], got[1]
	if strings.Contains(sale, "status=rejected") {
		sale, refund = refund, sale
	}
	if !strings.Contains(sale, "/abc123/postback?subid=KT-sub-1") || !strings.Contains(sale, "status=sale") || !strings.Contains(sale, "payout=11.99") {
		t.Errorf("sale postback %s", sale)
	}
	if !strings.Contains(refund, "subid=KT-sub-1") || !strings.Contains(refund, "status=rejected") {
		t.Errorf("refund postback %s", refund)
	}
}

func TestRecipeWooCommerceWebhook(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	const secret = "wc_webhook_secret"
	loadRecipe(t, "woocommerce-webhook.Caddyfile", map[string]string{"CJ_URL": net.URL, "WC_WEBHOOK_SECRET": secret, "UPSTREAM": hostPort(up)})
	v := visitor(t)
	get(t, v, "/?cjevent=656e8fa049ec11ea8237023d0a240612")
	get(t, v, "/checkout/order-received/727/?key=wc_order_58d2d042d1d")

	// WooCommerce's creation ping: unsigned form body, must get 200.
	if post(t, "/hooks/woocommerce", []byte("webhook_id=12"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}) != 200 {
		t.Fatal("ping refused")
	}
	order := testdataWebhook(t, "woocommerce_order.json")
	if post(t, "/hooks/woocommerce", order, map[string]string{
		"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Resource": "order",
		"X-WC-Webhook-Event": "updated", "X-WC-Webhook-Delivery-ID": "d-1", "X-WC-Webhook-ID": "12",
		"X-WC-Webhook-Signature": base64.StdEncoding.EncodeToString(hmacSum(secret, order)),
	}) != 200 {
		t.Fatal("order webhook refused")
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("postbacks %q", got)
	}
	q, _ := url.ParseQuery(strings.SplitN(got[0], "?", 2)[1])
	if !strings.HasPrefix(got[0], "/u?") || q.Get("CID") != "1234567" || q.Get("TYPE") != "890123" || q.Get("METHOD") != "S2S" ||
		q.Get("CJEVENT") != "656e8fa049ec11ea8237023d0a240612" || q.Get("OID") != "727" {
		t.Fatalf("cj postback %s", got[0])
	}
}

func testdataWebhook(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/webhook/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}
