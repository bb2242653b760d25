package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// recurringConfig configures one recurring-commission network whose API is
// the loopback fake api, and a site with a Stripe webhook and decorated
// payment links.
func recurringConfig(storage, network, apiURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
%s
	}
}

:%d {
	postback {
		webhook /hooks/stripe stripe %s
		decorate buy.stripe.com stripe
	}
	reverse_proxy %s
}
`, globalHead(), storage, strings.ReplaceAll(network, "{api}", apiURL), httpPort, stripeSecret, upstream)
}

// stripeSubscriptionEvent is a checkout.session.completed event of a
// subscription sold through a Payment Link, shaped like Stripe's (API
// version 2025-03-31 and later): the session names its subscription and
// first invoice.
func stripeSubscriptionEvent(eventID, sessionID, sub, firstInvoice, ref string, metadata map[string]string, cents int) []byte {
	refJSON := "null"
	if ref != "" {
		refJSON = `"` + ref + `"`
	}
	meta, _ := json.Marshal(metadata)
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2025-03-31.basil","created":%d,
"data":{"object":{"id":%q,"object":"checkout.session","amount_subtotal":%d,"amount_total":%d,"client_reference_id":%s,
"currency":"eur","customer":"cus_Sub1","customer_details":{"email":"Erika.Mustermann@example.de","name":"Erika Mustermann"},
"invoice":%q,"livemode":true,"metadata":%s,"mode":"subscription","payment_intent":null,"payment_link":"plink_monthly",
"payment_status":"paid","status":"complete","subscription":%q}},
"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed"}`,
		eventID, time.Now().Unix(), sessionID, cents, cents, refJSON, firstInvoice, meta, sub))
}

// stripeInvoicePaid is an invoice.paid event of a subscription's invoice.
func stripeInvoicePaid(eventID, invoice, sub, reason string, cents int) []byte {
	now := time.Now().Unix()
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2025-03-31.basil","created":%d,
"data":{"object":{"id":%q,"object":"invoice","amount_due":%d,"amount_paid":%d,"amount_remaining":0,"billing_reason":%q,
"currency":"eur","customer":"cus_Sub1","customer_email":"Erika.Mustermann@example.de","livemode":true,
"parent":{"quote_details":null,"subscription_details":{"metadata":{},"subscription":%q},"type":"subscription_details"},
"status":"paid","status_transitions":{"paid_at":%d}}},
"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid"}`,
		eventID, now, invoice, cents, cents, reason, sub, now))
}

// stripeInvoiceRefunded is a charge.refunded event of an invoice's charge
// (API versions that still name the invoice on the charge).
func stripeInvoiceRefunded(eventID, charge, invoice string, cents int) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,
"data":{"object":{"id":%q,"object":"charge","amount":%d,"amount_captured":%d,"amount_refunded":%d,"captured":true,
"currency":"eur","customer":"cus_Sub1","invoice":%q,"livemode":true,"paid":true,"payment_intent":"pi_%s","refunded":true,"status":"succeeded"}},
"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"charge.refunded"}`,
		eventID, time.Now().Unix(), charge, cents, cents, cents, invoice, charge))
}

// stripeSubscriptionDeleted is a customer.subscription.deleted event.
func stripeSubscriptionDeleted(eventID, sub string) []byte {
	now := time.Now().Unix()
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2025-03-31.basil","created":%d,
"data":{"object":{"id":%q,"object":"subscription","canceled_at":%d,"customer":"cus_Sub1","livemode":true,"status":"canceled"}},
"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.deleted"}`,
		eventID, now, sub, now))
}

// apiCall is one request a fake API received.
type apiCall struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// calls returns the JSON requests a fake API received, in order.
func (n *network) calls(t *testing.T) []apiCall {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []apiCall
	for i, r := range n.hits {
		c := apiCall{Path: r.URL.Path, Header: r.Header}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal([]byte(n.bodies[i]), &c.Body); err != nil {
				t.Fatalf("%s: body %q is not JSON: %v", r.URL.Path, n.bodies[i], err)
			}
		} else {
			form, _ := url.ParseQuery(n.bodies[i])
			c.Body = map[string]any{}
			for k := range form {
				c.Body[k] = form.Get(k)
			}
		}
		out = append(out, c)
	}
	return out
}

// postWebhook posts a signed Stripe event and wants it acknowledged.
func postWebhook(t *testing.T, body []byte) {
	t.Helper()
	if status, b := postStripe(t, body, stripeSecret, time.Now()); status != 200 {
		t.Fatalf("webhook: %d %s", status, b)
	}
}

// pricingPage serves a page with a Stripe Payment Link.
func pricingPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<html><body><a href="https://buy.stripe.com/test_monthly">Subscribe</a></body></html>`)
}

// TestSubscriptionToFirstPromoter: a visitor comes through a FirstPromoter
// link (?fpr=), FirstPromoter's script sets its _fprom_tid cookie, and the
// visitor subscribes through a decorated Payment Link. The checkout's
// first payment is one sale, two renewals are two rebills of the same
// visitor, a refunded renewal is a refund and the cancellation is a
// cancellation, each sent once to FirstPromoter's API (a loopback fake)
// however often Stripe retries.
func TestSubscriptionToFirstPromoter(t *testing.T) {
	api := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){"/pricing": pricingPage})
	const key = "fp_key_0123456789abcdef"
	mustLoad(t, recurringConfig(t.TempDir(), `		network fp {
			preset firstpromoter
			api_key `+key+`
			account_id acc_42
			url {api}
		}`, api.URL, hostPort(up)))
	before := metricValues(t)[`caddy_postback_clicks_captured_total{network="fp"}`]

	v := visitor(t)
	get(t, v, "/?fpr=jane-affiliate")
	const tid = "5c1a4e0e-07e5-4d0c-b8a8-1f3f0a3e9d21"
	v.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "_fprom_tid", Value: tid}}) // as fpr.js does
	var ref string
	for range 3 { // the cookie comes with every request; it is captured once
		_, page := get(t, v, "/pricing")
		m := regexp.MustCompile(`client_reference_id=([A-Za-z0-9_-]+)`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("payment link not decorated:\n%s", page)
		}
		if ref != "" && m[1] != ref {
			t.Fatalf("session reference changed from %s to %s", ref, m[1])
		}
		ref = m[1]
	}
	if got := metricValues(t)[`caddy_postback_clicks_captured_total{network="fp"}`] - before; got != 2 {
		t.Fatalf("%v clicks captured, want 2: the fpr link and the _fprom_tid cookie once", got)
	}

	const sub = "sub_1PzSubMonthly"
	postWebhook(t, stripeSubscriptionEvent("evt_sale", "cs_sub_1", sub, "in_first", ref, nil, 1900))
	postWebhook(t, stripeInvoicePaid("evt_first_inv", "in_first", sub, "subscription_create", 1900)) // the same payment: ignored
	postWebhook(t, stripeInvoicePaid("evt_renew_2", "in_second", sub, "subscription_cycle", 1900))
	postWebhook(t, stripeInvoicePaid("evt_renew_2", "in_second", sub, "subscription_cycle", 1900))       // Stripe's retry
	postWebhook(t, stripeInvoicePaid("evt_renew_2_again", "in_second", sub, "subscription_cycle", 1900)) // another event, same invoice
	postWebhook(t, stripeInvoicePaid("evt_renew_3", "in_third", sub, "subscription_cycle", 2900))
	waitQueueEmpty(t, 10*time.Second)
	postWebhook(t, stripeInvoiceRefunded("evt_refund_3", "ch_third", "in_third", 2900))
	waitQueueEmpty(t, 10*time.Second)
	postWebhook(t, stripeSubscriptionDeleted("evt_cancel", sub))
	waitQueueEmpty(t, 10*time.Second)

	calls := api.calls(t)
	type want struct {
		path string
		body map[string]any
	}
	wants := []want{
		{"/api/v2/track/sale", map[string]any{"event_id": "cs_sub_1", "amount": 1900.0, "currency": "EUR", "tid": tid}},
		{"/api/v2/track/sale", map[string]any{"event_id": "in_second", "amount": 1900.0, "currency": "EUR", "tid": tid}},
		{"/api/v2/track/sale", map[string]any{"event_id": "in_third", "amount": 2900.0, "currency": "EUR", "tid": tid}},
		{"/api/v2/track/refund", map[string]any{"event_id": "in_third:refund", "amount": "2900", "sale_event_id": "in_third"}},
		{"/api/v2/track/cancellation", map[string]any{}},
	}
	if len(calls) != len(wants) {
		for _, c := range calls {
			t.Logf("%s %v", c.Path, c.Body)
		}
		t.Fatalf("%d requests to FirstPromoter, want %d", len(calls), len(wants))
	}
	// The three sales were queued one after another without waiting, so
	// the dispatcher's workers may send them in any order.
	rank := func(c apiCall) int {
		for i, w := range wants {
			if c.Path == w.path && (w.body["event_id"] == nil || c.Body["event_id"] == w.body["event_id"]) {
				return i
			}
		}
		return len(wants)
	}
	slices.SortStableFunc(calls, func(a, b apiCall) int { return rank(a) - rank(b) })
	uid := calls[0].Body["uid"]
	for i, w := range wants {
		c := calls[i]
		if c.Path != w.path {
			t.Errorf("request %d: %s, want %s", i, c.Path, w.path)
		}
		for k, v := range w.body {
			if c.Body[k] != v {
				t.Errorf("request %d (%s): %s = %#v, want %#v", i, c.Path, k, c.Body[k], v)
			}
		}
		if c.Body["uid"] != uid || uid == "" || uid == nil {
			t.Errorf("request %d: uid %v, want the sale's %v: one customer", i, c.Body["uid"], uid)
		}
		if _, ok := c.Body["ref_id"]; ok {
			t.Errorf("request %d sends ref_id: the later _fprom_tid click is the one credited", i)
		}
		if c.Header.Get("Authorization") != "Bearer "+key || c.Header.Get("Account-Id") != "acc_42" {
			t.Errorf("request %d: auth %q, account %q", i, c.Header.Get("Authorization"), c.Header.Get("Account-Id"))
		}
	}
}

// TestSubscriptionToRewardful: Rewardful's script keeps the visitor's
// referral in its rewardful.referral cookie (JSON); the session reference
// reaches Stripe in the checkout's metadata. The sale and two renewals
// are three Rewardful sales on that referral; Rewardful takes no refund
// from us, so the refund is recorded and sent nowhere.
func TestSubscriptionToRewardful(t *testing.T) {
	api := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){"/pricing": pricingPage})
	const secret = "rw_secret_0123456789abcdef"
	mustLoad(t, recurringConfig(t.TempDir(), `		network rewardful {
			preset rewardful
			api_secret `+secret+`
			url {api}
		}`, api.URL, hostPort(up)))

	v := visitor(t)
	get(t, v, "/?via=jane") // the link token alone is not captured
	if c := v.Jar.Cookies(mustURL(t)); len(c) != 0 {
		t.Fatalf("cookies %v after a ?via= landing: only Rewardful's referral can be reported", c)
	}
	const referral = "2b9d5d7a-41f1-4c5e-9a51-0e4c4a1f7b11"
	doc := `{"id":"` + referral + `","created_at":"2026-12-01T10:00:00.000Z","affiliate":{"id":"aff-1","token":"jane"},"coupon":null}`
	v.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "rewardful.referral", Value: url.PathEscape(doc)}})
	_, page := get(t, v, "/pricing")
	m := regexp.MustCompile(`client_reference_id=([A-Za-z0-9_-]+)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("payment link not decorated: the referral cookie made no session:\n%s", page)
	}
	ref := m[1]

	const sub = "sub_1PzRewardful"
	// The reference travels in the metadata this time (a checkout made
	// by the site's server).
	postWebhook(t, stripeSubscriptionEvent("evt_rw_sale", "cs_rw_1", sub, "in_rw_first", "", map[string]string{"pb_session": ref}, 4900))
	postWebhook(t, stripeInvoicePaid("evt_rw_2", "in_rw_second", sub, "subscription_cycle", 4900))
	postWebhook(t, stripeInvoicePaid("evt_rw_3", "in_rw_third", sub, "subscription_cycle", 4900))
	postWebhook(t, stripeInvoiceRefunded("evt_rw_refund", "ch_rw_third", "in_rw_third", 4900))
	waitQueueEmpty(t, 10*time.Second)

	calls := api.calls(t)
	if len(calls) != 3 {
		t.Fatalf("%d requests to Rewardful, want 3 sales", len(calls))
	}
	for i, id := range []string{"cs_rw_1", "in_rw_second", "in_rw_third"} {
		c := calls[i]
		if c.Path != "/v1/sales" || c.Body["referral_id"] != referral || c.Body["external_id"] != id || c.Body["charge_amount_cents"] != "4900" || c.Body["currency"] != "EUR" {
			t.Errorf("sale %d: %s %v", i, c.Path, c.Body)
		}
		if user, _, ok := (&http.Request{Header: c.Header}).BasicAuth(); !ok || user != secret {
			t.Errorf("sale %d: not authenticated with the API secret", i)
		}
	}
	status, b := adminDo(t, "GET", "/postback/conversions?status=refunded", nil)
	if status != 200 || !strings.Contains(string(b), "rewardful: does not take purchase/refunded") {
		t.Errorf("the refund's conversion should say why Rewardful got nothing: %d %s", status, b)
	}
}

// TestRewardfulReferralAsClientReference: a site whose checkout already
// passes Rewardful's referral as Stripe's client_reference_id (Rewardful's
// own Stripe integration) needs no decorated link: the referral is a click
// captured from the visitor's rewardful.referral cookie.
func TestRewardfulReferralAsClientReference(t *testing.T) {
	api := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, recurringConfig(t.TempDir(), `		network rewardful {
			preset rewardful
			api_secret rw_secret_0123456789abcdef
			url {api}
		}`, api.URL, hostPort(up)))
	const referral = "7f0c2d4e-9b1a-4c3d-8e5f-a6b7c8d9e0f1"
	v := visitor(t)
	v.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "rewardful.referral", Value: url.PathEscape(`{"id":"` + referral + `"}`)}})
	get(t, v, "/account")
	postWebhook(t, stripeSubscriptionEvent("evt_rw_ref", "cs_rw_ref", "sub_rw_ref", "in_rw_ref", referral, nil, 1500))
	// A reference that is neither ours nor a captured click credits nobody.
	postWebhook(t, stripeSubscriptionEvent("evt_rw_other", "cs_rw_other", "sub_rw_other", "in_rw_other", "11111111-2222-4333-8444-555555555555", nil, 1500))
	waitQueueEmpty(t, 10*time.Second)
	calls := api.calls(t)
	if len(calls) != 1 || calls[0].Body["referral_id"] != referral || calls[0].Body["external_id"] != "cs_rw_ref" {
		t.Fatalf("requests to Rewardful: %+v; want one sale on the referral", calls)
	}
}
