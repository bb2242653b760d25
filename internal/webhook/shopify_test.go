package webhook

import (
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// The Shopify SDK's own vector (shopify-app-js validate.test.ts).
const (
	shopifySecret     = "test_secret_key"
	shopifyVectorBody = `{"foo": "bar"}`
	shopifyVectorHMAC = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
)

func shopifyReq(body []byte, topic string, extra ...string) *Request {
	h := hdr(append([]string{
		"Content-Type", "application/json",
		"X-Shopify-Hmac-Sha256", b64(hmacSHA256(shopifySecret, body)),
		"X-Shopify-Topic", topic,
		"X-Shopify-Shop-Domain", "shop1.myshopify.io",
		"X-Shopify-API-Version", "2026-07",
		"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5",
	}, extra...)...)
	return &Request{Header: h, Body: body, Now: testNow}
}

func TestShopifyVerify(t *testing.T) {
	body := fixture(t, "shopify_order.json")
	tests := []struct {
		name    string
		secrets []string
		req     func() *Request
		want    error
	}{
		{name: "SDK vector", req: func() *Request {
			return &Request{Header: hdr("X-Shopify-Hmac-Sha256", shopifyVectorHMAC, "X-Shopify-Topic", "products/create",
				"X-Shopify-API-Version", "2023-01", "X-Shopify-Shop-Domain", "shop1.myshopify.io", "X-Shopify-Webhook-Id", "123456789"),
				Body: []byte(shopifyVectorBody)}
		}},
		{name: "SDK vector, Events-style lowercase header", req: func() *Request {
			return &Request{Header: hdr("shopify-hmac-sha256", shopifyVectorHMAC, "Content-Type", "application/json"), Body: []byte(shopifyVectorBody)}
		}},
		{name: "SDK vector, wrong secret", secrets: []string{"test_secret_kez"}, req: func() *Request {
			return &Request{Header: hdr("X-Shopify-Hmac-Sha256", shopifyVectorHMAC), Body: []byte(shopifyVectorBody)}
		}, want: ErrSignature},
		{name: "order", req: func() *Request { return shopifyReq(body, "orders/paid") }},
		{name: "rotated secret", secrets: []string{"new_secret_value", shopifySecret}, req: func() *Request { return shopifyReq(body, "orders/paid") }},
		{name: "tampered body", req: func() *Request {
			r := shopifyReq(body, "orders/paid")
			r.Body = replace(t, body, `"total_price":"598.94"`, `"total_price":"1.00"`)
			return r
		}, want: ErrSignature},
		{name: "hex instead of base64", req: func() *Request {
			r := shopifyReq(body, "orders/paid")
			r.Header.Set("X-Shopify-Hmac-Sha256", hexs(hmacSHA256(shopifySecret, body)))
			return r
		}, want: ErrSignature},
		{name: "truncated signature", req: func() *Request {
			r := shopifyReq(body, "orders/paid")
			r.Header.Set("X-Shopify-Hmac-Sha256", r.Header.Get("X-Shopify-Hmac-Sha256")[:20])
			return r
		}, want: ErrSignature},
		{name: "no signature", req: func() *Request {
			r := shopifyReq(body, "orders/paid")
			r.Header.Del("X-Shopify-Hmac-Sha256")
			return r
		}, want: ErrSignature},
		{name: "wrong content type", req: func() *Request {
			r := shopifyReq(body, "orders/paid")
			r.Header.Set("Content-Type", "text/html")
			return r
		}, want: ErrBadRequest},
		{name: "empty body", req: func() *Request { return shopifyReq([]byte{}, "orders/paid") }, want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, NewShopify, Config{Secrets: tt.secrets}, shopifySecret, tt.req(), tt.want)
		})
	}
}

func TestShopifyParse(t *testing.T) {
	ord := fixture(t, "shopify_order.json")
	ref := fixture(t, "shopify_refund.json")
	tests := []struct {
		name   string
		req    *Request
		want   error
		kind   Kind
		id     string
		amount string
		status order.Status
		noCur  bool // no currency expected
		check  func(t *testing.T, ev Event)
	}{
		{name: "orders/paid", req: shopifyReq(ord, "orders/paid"), kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if ev.ID != "98880550-7158-44d4-b7cd-2c97c8a091b5" || ev.Topic != "orders/paid" {
					t.Errorf("event %q %q", ev.ID, ev.Topic)
				}
				if o.SessionRef != "s1_U2hvcGlmeVNlc3Npb24-sig" || emailOf(o) != order.Hash("bob.norman@mail.example.com") || o.Coupon != "TENOFF" {
					t.Errorf("session %q email %q coupon %q", o.SessionRef, emailOf(o), o.Coupon)
				}
				if o.ClickIDs["gclid"] != "Cj0KCQiA-abc_123" || o.ClickIDs["irclickid"] != "Wx1a2b3C4d" || o.ClickIDs["source"] != "abc" {
					t.Errorf("click IDs %v", o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Date(2008, 1, 10, 16, 0, 0, 0, time.UTC)) {
					t.Errorf("occurred %v", o.OccurredAt)
				}
			}},
		{name: "orders/create paid", req: shopifyReq(ord, "orders/create"), kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved},
		{name: "orders/create pending", req: shopifyReq(replace(t, ord, `"financial_status":"paid"`, `"financial_status":"pending"`), "orders/create"),
			kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusPending},
		{name: "orders/cancelled", req: shopifyReq(ord, "orders/cancelled"), kind: KindStatus, id: "450789469", amount: "598.94", status: order.StatusRejected},
		{name: "webhook id when no event id", req: func() *Request {
			r := shopifyReq(ord, "orders/paid")
			r.Header.Del("X-Shopify-Event-Id")
			return r
		}(), kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.ID != "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043" {
					t.Errorf("event ID %q", ev.ID)
				}
			}},
		{name: "Events-style lowercase headers", req: &Request{Body: ord, Header: hdr("shopify-topic", "orders/paid", "shopify-event-id", "ev-1")},
			kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.ID != "ev-1" {
					t.Errorf("event ID %q", ev.ID)
				}
			}},
		{name: "large id kept exact", req: shopifyReq(replace(t, ord, `"id":450789469`, `"id":12345678901234567890`), "orders/paid"),
			kind: KindOrder, id: "12345678901234567890", amount: "598.94", status: order.StatusApproved},
		{name: "relative landing site", req: shopifyReq(replace(t, ord, `"landing_site":"http://www.example.com?source=abc&gclid=Cj0KCQiA-abc_123&irclickid=Wx1a2b3C4d"`, `"landing_site":"/products/x?fbclid=IwAR1x#top"`), "orders/paid"),
			kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if len(ev.Order.ClickIDs) != 1 || ev.Order.ClickIDs["fbclid"] != "IwAR1x" {
					t.Errorf("click IDs %v", ev.Order.ClickIDs)
				}
			}},
		{name: "test order noted", req: shopifyReq(replace(t, ord, `"test":false`, `"test":true`), "orders/paid"),
			kind: KindOrder, id: "450789469", amount: "598.94", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Reason != "test order" {
					t.Errorf("reason %q", ev.Reason)
				}
			}},
		{name: "bad total kept as invalid", req: shopifyReq(replace(t, ord, `"total_price":"598.94"`, `"total_price":"n/a"`), "orders/paid"),
			kind: KindOrder, id: "450789469", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if len(ev.Order.Invalid) != 1 || len(ev.Order.Check()) == 0 {
					t.Errorf("invalid %v: the order must be held", ev.Order.Invalid)
				}
			}},
		{name: "refund sums successful refund transactions", req: shopifyReq(ref, "refunds/create"), kind: KindStatus, id: "450789469", amount: "200.00", status: order.StatusRefunded},
		{name: "refund without money", req: shopifyReq([]byte(`{"id":1,"order_id":450789469,"transactions":[]}`), "refunds/create"),
			kind: KindStatus, id: "450789469", status: order.StatusRefunded, noCur: true},
		{name: "other topic ignored", req: shopifyReq([]byte(shopifyVectorBody), "products/create"), kind: KindIgnore},
		{name: "no topic", req: &Request{Body: ord, Header: hdr()}, want: ErrMalformed},
		{name: "no order id", req: shopifyReq([]byte(`{"total_price":"1.00"}`), "orders/paid"), want: ErrMalformed},
		{name: "float order id", req: shopifyReq([]byte(`{"id":1.5}`), "orders/paid"), want: ErrMalformed},
		{name: "refund without order id", req: shopifyReq([]byte(`{"id":1}`), "refunds/create"), want: ErrMalformed},
		{name: "invalid JSON", req: shopifyReq([]byte(`{"id":`), "orders/paid"), want: ErrMalformed},
	}
	p, err := NewShopify(Config{Secrets: []string{shopifySecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, tt.req, tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Kind != KindIgnore {
				cur := "USD"
				if tt.noCur {
					cur = ""
				}
				checkOrder(t, ev.Order, tt.id, tt.amount, cur, tt.status)
			} else if ev.Reason == "" {
				t.Error("ignored without a reason")
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
