package webhook

import (
	"net/url"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const gumroadToken = "gr_9fK2mQ7xLp4vT8zW"

func gumroadReq(body []byte, path string) *Request {
	return &Request{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Body: body, Path: path, Now: testNow}
}

func TestGumroadVerify(t *testing.T) {
	body := fixture(t, "gumroad_sale.form")
	const path = "/.well-known/postback/gumroad/" + gumroadToken
	tests := []struct {
		name    string
		secrets []string
		req     *Request
		want    error
	}{
		{name: "token", req: gumroadReq(body, path)},
		{name: "token with trailing slash", req: gumroadReq(body, path+"/")},
		{name: "rotated token", secrets: []string{"gr_newtoken_1234567", gumroadToken}, req: gumroadReq(body, path)},
		{name: "wrong token", req: gumroadReq(body, "/.well-known/postback/gumroad/gr_9fK2mQ7xLp4vT8zX"), want: ErrSignature},
		{name: "token prefix only", req: gumroadReq(body, "/.well-known/postback/gumroad/gr_9fK2mQ7x"), want: ErrSignature},
		{name: "token not last", req: gumroadReq(body, path+"/x"), want: ErrSignature},
		{name: "no path", req: gumroadReq(body, ""), want: ErrSignature},
		{name: "root path", req: gumroadReq(body, "/"), want: ErrSignature},
		{name: "JSON content type", req: &Request{Header: hdr("Content-Type", "application/json"), Body: body, Path: path}, want: ErrBadRequest},
		{name: "empty body", req: gumroadReq(nil, path), want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, NewGumroad, Config{Secrets: tt.secrets}, gumroadToken, tt.req, tt.want)
		})
	}
}

func TestGumroadParse(t *testing.T) {
	body := fixture(t, "gumroad_sale.form")
	const saleID = "FO8TXN-dvxYabdavG97Y-Q=="
	form := func(edit func(v url.Values)) []byte {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		edit(v)
		return []byte(v.Encode())
	}
	tests := []struct {
		name   string
		body   []byte
		want   error
		kind   Kind
		amount string
		cur    string
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "sale", body: body, kind: KindOrder, amount: "25.00", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if ev.ID != "gumroad_"+saleID+"_sale" || emailOf(o) != order.Hash("buyer@example.com") || o.Coupon != "SPRING" {
					t.Errorf("event %q email %q coupon %q", ev.ID, emailOf(o), o.Coupon)
				}
				if o.SessionRef != "s1_R3Vtcm9hZFNlc3Npb24-sig" || o.ClickIDs["gclid"] != "Cj0KCQiA-gum_1" || len(o.ClickIDs) != 1 {
					t.Errorf("session %q click IDs %v", o.SessionRef, o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Date(2024, 5, 2, 14, 3, 11, 0, time.UTC)) || len(o.Problems) != 0 {
					t.Errorf("occurred %v problems %v", o.OccurredAt, o.Problems)
				}
			}},
		{name: "url_params as Ruby-hash-like string (Gumroad docs)", body: form(func(v url.Values) {
			v.Del("url_params[pb_session]")
			v.Del("url_params[gclid]")
			v.Set("url_params", `{'source_url' : 'https%3A%2F%2Fgumroad.com%2Fwidgets', 'pb_session' : 's1_hash', 'campaignid' : 'c123', 'userid' : '456'}`)
		}), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if o.SessionRef != "s1_hash" || o.ClickIDs["campaignid"] != "c123" || o.ClickIDs["source_url"] != "https://gumroad.com/widgets" {
					t.Errorf("session %q click IDs %v", o.SessionRef, o.ClickIDs)
				}
			}},
		{name: "url_params as Ruby hash with =>", body: form(func(v url.Values) {
			v.Del("url_params[pb_session]")
			v.Set("url_params", `{"pb_session"=>"s1_rocket", "n"=>5, "x"=>nil}`)
		}), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "s1_rocket" || ev.Order.ClickIDs["n"] != "5" {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
				if _, ok := ev.Order.ClickIDs["x"]; ok {
					t.Error("nil kept")
				}
			}},
		{name: "url_params as JSON", body: form(func(v url.Values) {
			v.Del("url_params[pb_session]")
			v.Set("url_params", `{"pb_session":"s1_json"}`)
		}), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "s1_json" {
					t.Errorf("session %q", ev.Order.SessionRef)
				}
			}},
		{name: "refund", body: form(func(v url.Values) { v.Set("refunded", "true") }), kind: KindStatus, amount: "25", cur: "USD", status: order.StatusRefunded,
			check: func(t *testing.T, ev Event) {
				if ev.ID != "gumroad_"+saleID+"_refund" {
					t.Errorf("event ID %q", ev.ID)
				}
			}},
		{name: "lost dispute", body: form(func(v url.Values) { v.Set("disputed", "true") }), kind: KindStatus, amount: "25", cur: "USD", status: order.StatusRefunded},
		{name: "won dispute", body: form(func(v url.Values) { v.Set("disputed", "true"); v.Set("dispute_won", "true") }), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved},
		{name: "test sale", body: form(func(v url.Values) { v.Set("test", "true") }), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Reason != "test sale" || len(ev.Order.Problems) != 1 || ev.Order.Problems[0] != "test sale" {
					t.Errorf("reason %q problems %v", ev.Reason, ev.Order.Problems)
				}
			}},
		{name: "no currency means USD", body: form(func(v url.Values) { v.Del("currency") }), kind: KindOrder, amount: "25", cur: "USD", status: order.StatusApproved},
		{name: "yen price", body: form(func(v url.Values) { v.Set("currency", "jpy"); v.Set("price", "1500") }), kind: KindOrder, amount: "1500", cur: "JPY", status: order.StatusApproved},
		{name: "bad price kept as problem", body: form(func(v url.Values) { v.Set("price", "$25") }), kind: KindOrder, cur: "USD", status: order.StatusApproved},
		{name: "no sale id", body: form(func(v url.Values) { v.Del("sale_id") }), want: ErrMalformed},
		{name: "bad form encoding", body: []byte("sale_id=%zz&price=1"), want: ErrMalformed},
	}
	p, err := NewGumroad(Config{Secrets: []string{gumroadToken}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := p.Parse(gumroadReq(tt.body, "/x/"+gumroadToken))
			wantErr(t, err, tt.want)
			checkInvariants(t, p, ev, err)
			if err != nil {
				return
			}
			if ev.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v", ev.Kind, tt.kind)
			}
			checkOrder(t, ev.Order, saleID, tt.amount, tt.cur, tt.status)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
