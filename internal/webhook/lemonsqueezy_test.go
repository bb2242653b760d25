package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// The reference's [CALC] value for secret test_secret_key and {"foo": "bar"}.
const lemonVectorSig = "076ded5cdebcd60674a8858d46b82dcc113d5d20e8e72694bbac1f9a1bb76bb8"

const lemonSecret = "test_secret_key"

func lemonReq(body []byte, event string) *Request {
	h := hdr("Content-Type", "application/json", "X-Signature", hexs(hmacSHA256(lemonSecret, body)))
	if event != "" {
		h.Set("X-Event-Name", event)
	}
	return &Request{Header: h, Body: body, Now: testNow}
}

func TestLemonSqueezyVerify(t *testing.T) {
	body := fixture(t, "lemonsqueezy_order_created.json")
	tests := []struct {
		name    string
		secrets []string
		req     func() *Request
		want    error
	}{
		{name: "vector", req: func() *Request {
			return &Request{Header: hdr("X-Signature", lemonVectorSig, "Content-Type", "application/json"), Body: []byte(`{"foo": "bar"}`)}
		}},
		{name: "vector upper-case hex", req: func() *Request {
			return &Request{Header: hdr("X-Signature", strings.ToUpper(lemonVectorSig)), Body: []byte(`{"foo": "bar"}`)}
		}},
		{name: "vector as base64 rejected", req: func() *Request {
			return &Request{Header: hdr("X-Signature", b64(hmacSHA256(lemonSecret, []byte(`{"foo": "bar"}`)))), Body: []byte(`{"foo": "bar"}`)}
		}, want: ErrSignature},
		{name: "order", req: func() *Request { return lemonReq(body, "order_created") }},
		{name: "rotated secret", secrets: []string{"another_secret", lemonSecret}, req: func() *Request { return lemonReq(body, "order_created") }},
		{name: "wrong secret", secrets: []string{"another_secret"}, req: func() *Request { return lemonReq(body, "order_created") }, want: ErrSignature},
		{name: "tampered", req: func() *Request {
			r := lemonReq(body, "order_created")
			r.Body = replace(t, body, `"total":1199`, `"total":1`)
			return r
		}, want: ErrSignature},
		{name: "no signature", req: func() *Request {
			r := lemonReq(body, "order_created")
			r.Header.Del("X-Signature")
			return r
		}, want: ErrSignature},
		{name: "wrong content type", req: func() *Request {
			r := lemonReq(body, "order_created")
			r.Header.Set("Content-Type", "multipart/form-data")
			return r
		}, want: ErrBadRequest},
		{name: "empty body", req: func() *Request { return lemonReq(nil, "order_created") }, want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, NewLemonSqueezy, Config{Secrets: tt.secrets}, lemonSecret, tt.req(), tt.want)
		})
	}
}

func TestLemonSqueezyParse(t *testing.T) {
	created := fixture(t, "lemonsqueezy_order_created.json")
	refunded := fixture(t, "lemonsqueezy_order_refunded.json")
	status := func(s string) []byte { return replace(t, created, `"status":"paid"`, `"status":"`+s+`"`) }
	tests := []struct {
		name   string
		req    *Request
		want   error
		kind   Kind
		amount string
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "paid", req: lemonReq(created, "order_created"), kind: KindOrder, amount: "11.99", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if o.SessionRef != "s1_TGVtb25TZXNzaW9u-sig" || emailOf(o) != order.Hash("johndoe@example.com") {
					t.Errorf("session %q email %q", o.SessionRef, emailOf(o))
				}
				if o.ClickIDs != nil {
					t.Errorf("numbers copied as click IDs: %v", o.ClickIDs)
				}
				if !strings.HasPrefix(ev.ID, "ls_") || len(ev.ID) != 3+32 || o.EventID != ev.ID {
					t.Errorf("event ID %q", ev.ID)
				}
				if ev.Reason != "test mode" {
					t.Errorf("reason %q", ev.Reason)
				}
				if !o.OccurredAt.Equal(time.Date(2021, 8, 17, 9, 45, 53, 0, time.UTC)) {
					t.Errorf("occurred %v", o.OccurredAt)
				}
			}},
		{name: "event name from meta", req: func() *Request { r := lemonReq(created, ""); return r }(), kind: KindOrder, amount: "11.99", status: order.StatusApproved},
		{name: "pending", req: lemonReq(status("pending"), "order_created"), kind: KindOrder, amount: "11.99", status: order.StatusPending},
		{name: "failed", req: lemonReq(status("failed"), "order_created"), kind: KindStatus, amount: "11.99", status: order.StatusRejected},
		{name: "unknown status", req: lemonReq(status("fraudulent"), "order_created"), kind: KindIgnore},
		{name: "refunded uses refunded_amount", req: lemonReq(refunded, "order_refunded"), kind: KindStatus, amount: "5.00", status: order.StatusRefunded},
		{name: "refund without refunded_amount uses total", req: lemonReq(replace(t, refunded, `"refunded_amount":500,`, ``), "order_refunded"), kind: KindStatus, amount: "11.99", status: order.StatusRefunded},
		{name: "subscription event ignored", req: lemonReq(created, "subscription_created"), kind: KindIgnore},
		{name: "no event name", req: lemonReq([]byte(`{"data":{"id":"1"}}`), ""), want: ErrMalformed},
		{name: "no order id", req: lemonReq([]byte(`{"data":{"attributes":{"status":"paid"}}}`), "order_created"), want: ErrMalformed},
		{name: "invalid JSON", req: lemonReq([]byte(`{"meta":`), "order_created"), want: ErrMalformed},
	}
	p, err := NewLemonSqueezy(Config{Secrets: []string{lemonSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, tt.req, tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Kind == KindIgnore {
				if ev.Reason == "" {
					t.Error("ignored without a reason")
				}
			} else {
				checkOrder(t, ev.Order, "1", tt.amount, "USD", tt.status)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// TestLemonSqueezyEventID: a retry (same bytes) keeps its ID; another event
// name or body does not.
func TestLemonSqueezyEventID(t *testing.T) {
	body := fixture(t, "lemonsqueezy_order_created.json")
	a, b := lemonEventID("order_created", body), lemonEventID("order_created", body)
	if a != b {
		t.Fatalf("unstable: %s %s", a, b)
	}
	if a == lemonEventID("order_refunded", body) || a == lemonEventID("order_created", append([]byte(" "), body...)) {
		t.Fatal("collision")
	}
}
