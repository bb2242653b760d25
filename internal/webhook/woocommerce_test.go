package webhook

import (
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const wooSecret = "test_secret_key"

func wooReq(body []byte, topic string) *Request {
	return &Request{
		Header: hdr(
			"Content-Type", "application/json",
			"User-Agent", "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)",
			"X-WC-Webhook-Source", "https://shop.example.com/",
			"X-WC-Webhook-Topic", topic,
			"X-WC-Webhook-Resource", "order",
			"X-WC-Webhook-Event", "updated",
			"X-WC-Webhook-Signature", b64(hmacSHA256(wooSecret, body)),
			"X-WC-Webhook-ID", "12",
			"X-WC-Webhook-Delivery-ID", "3b8f1a0c9d2e4f5a6b7c8d9e0f1a2b3c",
		),
		Body: body, Now: testNow,
	}
}

func TestWooCommerceVerify(t *testing.T) {
	body := fixture(t, "woocommerce_order.json")
	ping := func(ct, body string) func() *Request {
		return func() *Request {
			h := hdr()
			if ct != "" {
				h.Set("Content-Type", ct)
			}
			return &Request{Header: h, Body: []byte(body)}
		}
	}
	tests := []struct {
		name    string
		secrets []string
		req     func() *Request
		want    error
	}{
		// Same algorithm as Shopify, so Shopify's SDK vector applies (reference §4.3).
		{name: "shared vector", req: func() *Request {
			return &Request{Header: hdr("X-WC-Webhook-Signature", shopifyVectorHMAC, "Content-Type", "application/json"), Body: []byte(shopifyVectorBody)}
		}},
		{name: "order", req: func() *Request { return wooReq(body, "order.updated") }},
		{name: "rotated secret", secrets: []string{"brand_new_secret", wooSecret}, req: func() *Request { return wooReq(body, "order.updated") }},
		{name: "wrong secret", secrets: []string{"other_secret"}, req: func() *Request { return wooReq(body, "order.updated") }, want: ErrSignature},
		{name: "tampered", req: func() *Request {
			r := wooReq(body, "order.updated")
			r.Body = replace(t, body, `"status":"processing"`, `"status":"completed"`)
			return r
		}, want: ErrSignature},
		{name: "creation ping", req: ping("application/x-www-form-urlencoded", "webhook_id=12")},
		{name: "creation ping without content type", req: ping("", "webhook_id=12")},
		{name: "ping-like JSON unsigned", req: ping("application/json", "webhook_id=12"), want: ErrSignature},
		{name: "ping with extra field", req: ping("application/x-www-form-urlencoded", "webhook_id=12&x=1"), want: ErrSignature},
		{name: "ping with non-numeric id", req: ping("application/x-www-form-urlencoded", "webhook_id=abc"), want: ErrSignature},
		{name: "ping with empty id", req: ping("application/x-www-form-urlencoded", "webhook_id="), want: ErrSignature},
		{name: "unsigned order", req: func() *Request {
			r := wooReq(body, "order.updated")
			r.Header.Del("X-WC-Webhook-Signature")
			return r
		}, want: ErrSignature},
		{name: "signed form body", req: func() *Request {
			r := wooReq([]byte("webhook_id=12"), "order.updated")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, want: ErrBadRequest},
		{name: "empty body", req: ping("", ""), want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, NewWooCommerce, Config{Secrets: tt.secrets}, wooSecret, tt.req(), tt.want)
		})
	}
}

func TestWooCommerceParse(t *testing.T) {
	body := fixture(t, "woocommerce_order.json")
	status := func(s string) []byte { return replace(t, body, `"status":"processing"`, `"status":"`+s+`"`) }
	tests := []struct {
		name   string
		req    *Request
		want   error
		kind   Kind
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "processing", req: wooReq(body, "order.created"), kind: KindOrder, status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				checkOrder(t, o, "727", "29.35", "USD", order.StatusApproved)
				if ev.ID != "3b8f1a0c9d2e4f5a6b7c8d9e0f1a2b3c" || ev.Topic != "order.created" {
					t.Errorf("event %q %q", ev.ID, ev.Topic)
				}
				if o.SessionRef != "s1_V29vU2Vzc2lvbg-sig" || emailOf(o) != order.Hash("john.doe@example.com") || o.Coupon != "spring10" {
					t.Errorf("session %q email %q coupon %q", o.SessionRef, emailOf(o), o.Coupon)
				}
				if !o.OccurredAt.Equal(time.Date(2017, 3, 22, 19, 28, 8, 0, time.UTC)) {
					t.Errorf("occurred %v", o.OccurredAt)
				}
			}},
		{name: "completed", req: wooReq(status("completed"), "order.updated"), kind: KindOrder, status: order.StatusApproved},
		{name: "pending", req: wooReq(status("pending"), "order.created"), kind: KindOrder, status: order.StatusPending},
		{name: "on-hold", req: wooReq(status("on-hold"), "order.updated"), kind: KindOrder, status: order.StatusPending},
		{name: "cancelled", req: wooReq(status("cancelled"), "order.updated"), kind: KindStatus, status: order.StatusRejected},
		{name: "failed", req: wooReq(status("failed"), "order.updated"), kind: KindStatus, status: order.StatusRejected},
		{name: "refunded", req: wooReq(status("refunded"), "order.updated"), kind: KindStatus, status: order.StatusRefunded},
		{name: "trash", req: wooReq(status("trash"), "order.updated"), kind: KindIgnore},
		{name: "plugin status", req: wooReq(status("awaiting-shipment"), "order.updated"), kind: KindIgnore},
		{name: "other topic", req: wooReq(body, "product.updated"), kind: KindIgnore},
		{name: "creation ping", req: &Request{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Body: []byte("webhook_id=12")}, kind: KindIgnore},
		{name: "session ref as a number", req: wooReq(replace(t, body, `"value":"s1_V29vU2Vzc2lvbg-sig"`, `"value":12345`), "order.created"), kind: KindOrder, status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "12345" {
					t.Errorf("session %q", ev.Order.SessionRef)
				}
			}},
		{name: "no topic", req: func() *Request { r := wooReq(body, ""); r.Header.Del("X-WC-Webhook-Topic"); return r }(), want: ErrMalformed},
		{name: "no id", req: wooReq([]byte(`{"status":"processing","total":"1.00"}`), "order.created"), want: ErrMalformed},
		{name: "invalid JSON", req: wooReq([]byte(`{"status":"processing",`), "order.created"), want: ErrMalformed},
	}
	p, err := NewWooCommerce(Config{Secrets: []string{wooSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, tt.req, tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Kind == KindIgnore && ev.Reason == "" {
				t.Error("ignored without a reason")
			}
			if ev.Kind != KindIgnore && ev.Order.Status != tt.status {
				t.Errorf("status %q, want %q", ev.Order.Status, tt.status)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
