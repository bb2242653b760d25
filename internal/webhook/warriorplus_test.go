package webhook

import (
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// wpKey is the security key in testdata/warriorplus_sale.form.
const wpKey = "wp-key-7Hq2Lx9Rv4Nz"

func wpReq(body string) *Request {
	return &Request{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Body: []byte(body), Now: testNow}
}

func TestWarriorPlusVerify(t *testing.T) {
	sale := string(fixture(t, "warriorplus_sale.form"))
	tests := []struct {
		name    string
		secrets []string
		body    string
		ctype   string
		want    error
	}{
		{name: "security key", body: sale},
		{name: "rotated keys", secrets: []string{"wp-old-key-000001", wpKey}, body: sale},
		{name: "no content type", body: sale, ctype: "-"},
		{name: "wrong key", body: editForm(t, sale, "WP_SECURITYKEY", "wp-key-7Hq2Lx9Rv4Nx"), want: ErrSignature},
		{name: "key prefix", body: editForm(t, sale, "WP_SECURITYKEY", "wp-key-7Hq2"), want: ErrSignature},
		{name: "key with a suffix", body: editForm(t, sale, "WP_SECURITYKEY", wpKey+"x"), want: ErrSignature},
		{name: "no key", body: editForm(t, sale, "WP_SECURITYKEY", "\x00"), want: ErrSignature},
		{name: "key sent twice", body: "WP_SECURITYKEY=guess&" + sale, want: ErrSignature},
		{name: "no WP_ACTION", body: editForm(t, sale, "WP_ACTION", "\x00"), want: ErrBadRequest},
		{name: "JSON content type", body: sale, ctype: "application/json", want: ErrBadRequest},
		{name: "empty body", body: "", want: ErrBadRequest},
		{name: "bad form encoding", body: sale + "&x=%zz", want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withContentType(wpReq(tt.body), tt.ctype)
			checkVerify(t, NewWarriorPlus, Config{Secrets: tt.secrets}, wpKey, r, tt.want)
		})
	}
}

// TestWarriorPlusKeyNotEchoed: a near-miss key (an old one, say) never
// appears in the error either.
func TestWarriorPlusKeyNotEchoed(t *testing.T) {
	sale := string(fixture(t, "warriorplus_sale.form"))
	p, err := NewWarriorPlus(Config{Secrets: []string{"wp-current-key-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Verify(wpReq(sale))
	wantErr(t, err, ErrSignature)
	if strings.Contains(err.Error(), wpKey) || strings.Contains(err.Error(), "wp-current-key-0001") {
		t.Fatalf("error echoes a key: %v", err)
	}
}

func TestWarriorPlusParse(t *testing.T) {
	sale := string(fixture(t, "warriorplus_sale.form"))
	ref := strings.Repeat("AbC-_9", 10) + "zz"
	subscr := func(kv ...string) string {
		body := sale + "&WP_SUBSCR_ID=subscr_77AB&WP_SUBSCR_STATUS=active&WP_SUBSCR_PAYMENT_NUM=1&WP_SUBSCR_PAYMENT_AMOUNT=9.00&WP_SUBSCR_PAYMENT_TXNID=PAYTXN0001"
		return editForm(t, body, kv...)
	}
	tests := []struct {
		name     string
		body     string
		want     error
		kind     Kind
		id       string
		amount   string
		status   order.Status
		event    string
		original string
		aliases  string
		reason   string
		check    func(t *testing.T, ev Event)
	}{
		{name: "sale", body: sale, kind: KindOrder, id: "8812345", amount: "27.00", status: order.StatusApproved, event: "purchase",
			aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C",
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if ev.ID != "ipn_5f2b9c7e1a" || o.EventID != ev.ID || ev.Topic != "sale" {
					t.Errorf("event %q topic %q", ev.ID, ev.Topic)
				}
				if o.SessionRef != ref || emailOf(o) != order.Hash("buyer@example.com") || len(o.ClickIDs) != 1 || o.ClickIDs["sid"] != "ig_story" {
					t.Errorf("session %q email %q click IDs %v", o.SessionRef, emailOf(o), o.ClickIDs)
				}
			}},
		{name: "sub-ID that is no session reference", body: editForm(t, sale, "WP_SID", "fb_campaign_7"), kind: KindOrder, id: "8812345", amount: "27", status: order.StatusApproved, event: "purchase",
			aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C",
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "" || ev.Order.ClickIDs["s"] != "fb_campaign_7" {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
			}},
		{name: "session reference in checkout parameters", body: editForm(t, sale, "WP_SID", "\x00") + "&WP_CHECKOUT_CUSTOM=pb_session%3Ds1_custom%26gclid%3DCj0_wp",
			kind: KindOrder, id: "8812345", amount: "27", status: order.StatusApproved, event: "purchase", aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C",
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "s1_custom" || ev.Order.ClickIDs["gclid"] != "Cj0_wp" {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
			}},
		{name: "pending payment", body: editForm(t, sale, "WP_PAYMENT_STATUS", "Pending"), kind: KindOrder, id: "8812345", amount: "27", status: order.StatusPending, event: "purchase",
			aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C"},
		{name: "no currency means USD", body: editForm(t, sale, "WP_SALE_CURRENCY", "\x00"), kind: KindOrder, id: "8812345", amount: "27", status: order.StatusApproved, event: "purchase",
			aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C"},
		{name: "subscription created", body: subscr("WP_ACTION", "subscr_created"), kind: KindOrder, id: "8812345", amount: "27", status: order.StatusApproved, event: "purchase",
			aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C subscr_77AB"},
		{name: "first subscription payment is the sale", body: subscr("WP_ACTION", "subscr_completed", "IPN_ID", "ipn_first"), kind: KindOrder, id: "8812345", amount: "27",
			status: order.StatusApproved, event: "purchase", aliases: "sale_k3J9xQ2mP7 3XK12345AB678901C subscr_77AB"},
		{name: "later subscription payment", body: subscr("WP_ACTION", "subscr_completed", "WP_SUBSCR_PAYMENT_NUM", "3", "WP_SUBSCR_PAYMENT_TXNID", "PAYTXN0003", "IPN_ID", "ipn_third"),
			kind: KindOrder, id: "PAYTXN0003", amount: "9.00", status: order.StatusApproved, event: order.EventRebill, original: "subscr_77AB"},
		{name: "later payment without its transaction ID", body: subscr("WP_ACTION", "subscr_completed", "WP_SUBSCR_PAYMENT_NUM", "4", "WP_SUBSCR_PAYMENT_TXNID", "\x00"),
			kind: KindOrder, id: "8812345-4", amount: "9", status: order.StatusApproved, event: order.EventRebill, original: "subscr_77AB"},
		{name: "payment with neither number nor transaction ID", body: subscr("WP_ACTION", "subscr_completed", "WP_SUBSCR_PAYMENT_NUM", "\x00", "WP_SUBSCR_PAYMENT_TXNID", "\x00"), want: ErrMalformed},
		{name: "refund", body: editForm(t, sale, "WP_ACTION", "refund", "WP_PAYMENT_STATUS", "Refunded"), kind: KindStatus, id: "8812345", amount: "27", status: order.StatusRefunded, event: "purchase"},
		{name: "dispute", body: editForm(t, sale, "WP_ACTION", "dispute"), kind: KindStatus, id: "8812345", amount: "27", status: order.StatusRefunded, event: "purchase",
			reason: "chargeback (dispute)"},
		{name: "cancelled subscription", body: subscr("WP_ACTION", "subscr_cancelled"), kind: KindIgnore, reason: "subscription cancelled: no money moved"},
		{name: "declined subscription payment", body: subscr("WP_ACTION", "subscr_failed_declined"), kind: KindIgnore, reason: `action "subscr_failed_declined" not used`},
		{name: "no sale ID", body: editForm(t, sale, "WP_SALEID", "\x00", "WP_SALE", "\x00"), want: ErrMalformed},
		{name: "API sale ID only", body: editForm(t, sale, "WP_SALEID", "\x00"), kind: KindOrder, id: "sale_k3J9xQ2mP7", amount: "27", status: order.StatusApproved, event: "purchase",
			aliases: "3XK12345AB678901C"},
		{name: "huge sale ID", body: editForm(t, sale, "WP_SALEID", strings.Repeat("9", 10_000)), want: ErrMalformed},
		{name: "no action", body: editForm(t, sale, "WP_ACTION", "\x00"), want: ErrMalformed},
	}
	p, err := NewWarriorPlus(Config{Secrets: []string{wpKey}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, wpReq(tt.body), tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Reason != tt.reason {
				t.Errorf("reason %q, want %q", ev.Reason, tt.reason)
			}
			if tt.kind == KindIgnore {
				return
			}
			checkOrder(t, ev.Order, tt.id, tt.amount, "USD", tt.status)
			if ev.Order.Event != tt.event || ev.Order.OriginalID != tt.original || strings.Join(ev.Order.Aliases, " ") != tt.aliases {
				t.Errorf("event %q original %q aliases %q, want %q %q %q", ev.Order.Event, ev.Order.OriginalID, ev.Order.Aliases, tt.event, tt.original, tt.aliases)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// TestWarriorPlusRetries: a notification sent again keeps its IPN_ID; one
// without IPN_ID falls back to sale, action and payment number, so the
// refund of a sale is not taken for a copy of it.
func TestWarriorPlusRetries(t *testing.T) {
	sale := string(fixture(t, "warriorplus_sale.form"))
	p, err := NewWarriorPlus(Config{Secrets: []string{wpKey}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for name, body := range map[string]string{
		"sale":        sale,
		"sale again":  sale,
		"no IPN_ID":   editForm(t, sale, "IPN_ID", "\x00"),
		"no IPN_ID 2": editForm(t, sale, "IPN_ID", "\x00"),
		"refund":      editForm(t, sale, "IPN_ID", "\x00", "WP_ACTION", "refund"),
	} {
		ev, err := p.Parse(wpReq(body))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = ev.ID
	}
	if ids["sale"] != ids["sale again"] || ids["no IPN_ID"] != ids["no IPN_ID 2"] || ids["refund"] == ids["no IPN_ID"] || ids["sale"] == ids["no IPN_ID"] {
		t.Fatalf("event IDs %v", ids)
	}
}
