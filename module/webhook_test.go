package module_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"
)

const stripeSecret = "whsec_test_secret_for_caddy_postback"

func hostedConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&a={amount}&cur={currency}&st={status}"
		}
	}
}

:%d {
	postback {
		webhook /hooks/stripe stripe %s
		webhook /hooks/shopify shopify shpss_test_secret
		decorate buy.stripe.com stripe
		conversion purchase {
			match path /thanks
			order_id {http.request.uri.query.session_id}
			join_only
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, stripeSecret, upstream)
}

// stripeEvent is a checkout.session.completed event shaped like Stripe's.
func stripeEvent(eventID, sessionID, ref string, cents int) []byte {
	refJSON := "null"
	if ref != "" {
		refJSON = `"` + ref + `"`
	}
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2026-07-29.dahlia","created":%d,
"data":{"object":{"id":%q,"object":"checkout.session","amount_subtotal":%d,"amount_total":%d,
"client_reference_id":%s,"currency":"usd","customer_details":{"email":"kim@example.org"},"livemode":true,
"metadata":{},"mode":"payment","payment_intent":"pi_%s","payment_link":"plink_1","payment_status":"paid","status":"complete"}},
"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed"}`,
		eventID, time.Now().Unix(), sessionID, cents, cents, refJSON, sessionID))
}

func postStripe(t *testing.T, body []byte, secret string, at time.Time) (int, string) {
	t.Helper()
	return postStripeSigned(t, "/hooks/stripe", body, secret, at)
}

func postStripeTo(t *testing.T, path string, body []byte) (int, string) {
	t.Helper()
	return postStripeSigned(t, path, body, stripeSecret, time.Now())
}

func postStripeSigned(t *testing.T, path string, body []byte, secret string, at time.Time) (int, string) {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d%s", httpPort, path), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", sp.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPaymentLinkToWebhookToPostback(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/pricing": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Length", "999") // wrong on purpose: decoration must drop it
			_, _ = io.WriteString(w, `<html><body>
<a href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA">Buy</a>
<a href='https://buy.stripe.com/test_other?prefilled_email=a%40b.c&amp;locale=en'>Buy with email</a>
<a href="https://buy.stripe.com.evil.example/x">Not ours</a>
</body></html>`)
		},
	})
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))

	// A visitor without a session sees the page undecorated.
	_, plain := get(t, visitor(t), "/pricing")
	if strings.Contains(plain, "client_reference_id") {
		t.Fatal("links decorated for a visitor without a session")
	}

	v := landed(t, "stripe1")
	resp, page := get(t, v, "/pricing")
	if resp.StatusCode != 200 {
		t.Fatalf("pricing: %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`https://buy\.stripe\.com/test_8wM8zHe8Qaz2dOg8xA\?client_reference_id=([A-Za-z0-9_-]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("payment link not decorated:\n%s", page)
	}
	ref := m[1]
	if !strings.Contains(page, "locale=en&amp;client_reference_id="+ref+"'") {
		t.Errorf("link with a query not decorated with &amp;:\n%s", page)
	}
	if strings.Contains(page, "evil.example/x?client_reference_id") {
		t.Error("a look-alike host was decorated")
	}

	body := stripeEvent("evt_A", "cs_test_A", ref, 4990)
	for range 2 { // Stripe retries deliver the same event again
		if status, b := postStripe(t, body, stripeSecret, time.Now()); status != 200 {
			t.Fatalf("webhook: %d %s", status, b)
		}
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/pb?c=stripe1&o=cs_test_A&a=49.90&cur=USD&st=approved" {
		t.Fatalf("postbacks %q", got)
	}

	// The visitor returns to the success page: the order is already
	// credited, so nothing more is sent.
	get(t, v, "/thanks?session_id=cs_test_A")
	if got := net.waitFor(t, 2, 300*time.Millisecond); len(got) != 1 {
		t.Fatalf("after the return page: %q", got)
	}
}

func TestReturnPageAndWebhookInEitherOrder(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))

	// Page first: the visitor's return page ties the order to the session;
	// the webhook (no client_reference_id) then confirms amount and status.
	v := landed(t, "pagefirst")
	get(t, v, "/thanks?session_id=cs_page_first")
	if got := net.waitFor(t, 1, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("a join-only page fired %q", got)
	}
	if status, b := postStripe(t, stripeEvent("evt_P", "cs_page_first", "", 1500), stripeSecret, time.Now()); status != 200 {
		t.Fatalf("webhook: %d %s", status, b)
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/pb?c=pagefirst&o=cs_page_first&a=15.00&cur=USD&st=approved" {
		t.Fatalf("page first: %q", got)
	}

	// Webhook first: nobody to credit yet; the return page then credits it.
	if status, b := postStripe(t, stripeEvent("evt_W", "cs_hook_first", "", 2500), stripeSecret, time.Now()); status != 200 {
		t.Fatalf("webhook: %d %s", status, b)
	}
	v2 := landed(t, "hookfirst")
	get(t, v2, "/thanks?session_id=cs_hook_first")
	get(t, v2, "/thanks?session_id=cs_hook_first") // back button
	got = net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 || got[1] != "/pb?c=hookfirst&o=cs_hook_first&a=25.00&cur=USD&st=approved" {
		t.Fatalf("webhook first: %q", got)
	}
}

func TestWebhookRefusals(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))
	body := stripeEvent("evt_R", "cs_R", "", 100)
	url := fmt.Sprintf("http://localhost:%d/hooks/stripe", httpPort)

	if status, _ := postStripe(t, body, "whsec_wrong", time.Now()); status != 401 {
		t.Errorf("wrong secret: %d, want 401", status)
	}
	if status, _ := postStripe(t, body, stripeSecret, time.Now().Add(-time.Hour)); status != 401 {
		t.Errorf("stale timestamp: %d, want 401", status)
	}
	tampered := bytes.Replace(body, []byte(`"amount_total":100`), []byte(`"amount_total":999`), 1)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret})
	req, _ := http.NewRequest("POST", url, bytes.NewReader(tampered))
	req.Header.Set("Stripe-Signature", sp.Header)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("tampered body: %v %v", resp.StatusCode, err)
	}
	big := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 2<<20)...)
	if status, _ := postStripe(t, big, stripeSecret, time.Now()); status != 413 {
		t.Errorf("oversized body: %d, want 413", status)
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", url, strings.NewReader("a=b"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Stripe-Signature", sp.Header)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("wrong content type: %v %v", resp.StatusCode, err)
	}
	// Authentic but unreadable: kept for inspection, acknowledged.
	if status, _ := postStripe(t, []byte(`{"id":"evt_x","object":"event","type":"checkout.session.completed","data":`), stripeSecret, time.Now()); status != 202 {
		t.Errorf("authentic malformed payload: %d, want 202", status)
	}
	if got := net.waitFor(t, 1, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("refused webhooks produced postbacks: %q", got)
	}
}

// TestShopifyLandingSiteJoin credits a Shopify order through the click ID
// that Shopify kept in landing_site, with no session at all.
func TestShopifyLandingSiteJoin(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))
	order := map[string]any{
		"id": 450789469, "name": "#1001", "currency": "USD", "total_price": "598.94", "financial_status": "paid",
		"landing_site": "/?clickid=shopclick&utm_source=x", "note_attributes": []any{}, "email": "bob@example.com",
	}
	body, _ := json.Marshal(order)
	mac := hmac.New(sha256.New, []byte("shpss_test_secret"))
	mac.Write(body)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/hooks/shopify", httpPort), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Shopify-Topic", "orders/paid")
	req.Header.Set("X-Shopify-Shop-Domain", "shop1.myshopify.com")
	req.Header.Set("X-Shopify-API-Version", "2026-07")
	req.Header.Set("X-Shopify-Webhook-Id", "wh-1")
	req.Header.Set("X-Shopify-Event-Id", "ev-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("shopify webhook: %d %s", resp.StatusCode, b)
	}
	got := net.waitFor(t, 1, 5*time.Second)
	want := "/pb?c=shopclick&o=450789469&a=598.94&cur=USD&st=approved"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("postbacks %q, want [%s]", got, want)
	}
}
