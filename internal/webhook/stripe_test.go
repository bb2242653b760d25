package webhook

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v85"
	stripewebhook "github.com/stripe/stripe-go/v85/webhook"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const stripeSecret = "whsec_test_secret"

func newStripe(tb testing.TB, secrets ...string) *Stripe {
	tb.Helper()
	if len(secrets) == 0 {
		secrets = []string{stripeSecret}
	}
	s, err := NewStripe(Config{Secrets: secrets})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// stripeSigned signs body with stripe-go's own test helper.
func stripeSigned(body []byte, secret string, at time.Time) string {
	return stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{
		Payload: body, Secret: secret, Timestamp: at,
	}).Header
}

func TestStripeVerify(t *testing.T) {
	body := fixture(t, "stripe_session_completed.json")
	valid := stripeSigned(body, stripeSecret, testNow)
	sigAt := func(at time.Time, secret string) string {
		return hexs(stripewebhook.ComputeSignature(at, body, secret))
	}
	ts := strconv.FormatInt(testNow.Unix(), 10)
	// The reference's [CALC] vector, cross-checked against stripe-go below.
	calcBody := []byte("{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}")
	const calcHeader = "t=1700000000,v1=4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150"
	if got := hexs(stripewebhook.ComputeSignature(time.Unix(1700000000, 0), calcBody, stripeSecret)); "t=1700000000,v1="+got != calcHeader {
		t.Fatalf("stripe-go disagrees with the reference vector: %s", got)
	}

	tests := []struct {
		name    string
		secrets []string
		tol     time.Duration
		body    []byte
		header  string
		ctype   string
		now     time.Time
		want    error
	}{
		{name: "stripe-go signed", header: valid},
		{name: "reference vector", body: calcBody, header: calcHeader, now: time.Unix(1700000010, 0)},
		{name: "charset in content type", header: valid, ctype: "application/json; charset=utf-8"},
		{name: "several v1, one valid", header: "t=" + ts + ",v1=" + sigAt(testNow, "whsec_other") + ",v1=zz,v1=" + sigAt(testNow, stripeSecret) + ",v0=abc"},
		{name: "unknown schemes ignored", header: "t=" + ts + ",v0=" + sigAt(testNow, stripeSecret) + ",v9=x,v1=" + sigAt(testNow, stripeSecret)},
		{name: "only v0", header: "t=" + ts + ",v0=" + sigAt(testNow, stripeSecret), want: ErrSignature},
		{name: "scheme v0 via stripe-go helper", header: stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: testNow, Scheme: "v0"}).Header, want: ErrSignature},
		{name: "rotated secret: old one signs", secrets: []string{"whsec_new", stripeSecret}, header: valid},
		{name: "wrong secret", secrets: []string{"whsec_other"}, header: valid, want: ErrSignature},
		{name: "tampered body", body: replace(t, body, `"amount_total": 2000`, `"amount_total": 1`), header: valid, want: ErrSignature},
		{name: "signature for another timestamp", header: "t=" + strconv.FormatInt(testNow.Unix()+1, 10) + ",v1=" + sigAt(testNow, stripeSecret), want: ErrSignature},
		{name: "just inside tolerance", header: stripeSigned(body, stripeSecret, testNow.Add(-299*time.Second))},
		{name: "stale", header: stripeSigned(body, stripeSecret, testNow.Add(-301*time.Second)), want: ErrSignature},
		{name: "custom tolerance", tol: 10 * time.Second, header: stripeSigned(body, stripeSecret, testNow.Add(-11*time.Second)), want: ErrSignature},
		// stripe-go only rejects old timestamps; only Stripe can sign a future one.
		{name: "future timestamp accepted", header: stripeSigned(body, stripeSecret, testNow.Add(time.Hour))},
		{name: "no header", want: ErrSignature},
		{name: "garbage header", header: "garbage", want: ErrSignature},
		{name: "no timestamp", header: "v1=" + sigAt(testNow, stripeSecret), want: ErrSignature},
		{name: "bad timestamp", header: "t=abc,v1=" + sigAt(testNow, stripeSecret), want: ErrSignature},
		{name: "no v1", header: "t=" + ts, want: ErrSignature},
		{name: "wrong content type", header: valid, ctype: "text/plain", want: ErrBadRequest},
		{name: "form content type", header: valid, ctype: "application/x-www-form-urlencoded", want: ErrBadRequest},
		{name: "empty body", body: []byte{}, header: valid, want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = body
			}
			ct := tt.ctype
			if ct == "" {
				ct = "application/json"
			}
			now := tt.now
			if now.IsZero() {
				now = testNow
			}
			r := &Request{Header: hdr("Content-Type", ct), Body: b, Now: now}
			if tt.header != "" {
				r.Header.Set("Stripe-Signature", tt.header)
			}
			checkVerify(t, NewStripe, Config{Secrets: tt.secrets, Tolerance: tt.tol}, stripeSecret, r, tt.want)
		})
	}
}

// TestStripeAgreesWithStripeGo signs a payload now with stripe-go and checks
// that stripe-go's own verifier and ours both accept it.
func TestStripeAgreesWithStripeGo(t *testing.T) {
	body := fixture(t, "stripe_session_completed.json")
	h := stripeSigned(body, stripeSecret, time.Time{}) // stripe-go's default: now
	if _, err := stripewebhook.ConstructEventWithOptions(body, h, stripeSecret, stripewebhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true}); err != nil {
		t.Fatalf("stripe-go rejects its own payload: %v", err)
	}
	r := &Request{Header: hdr("Stripe-Signature", h, "Content-Type", "application/json"), Body: body}
	if err := newStripe(t).Verify(r); err != nil {
		t.Fatal(err)
	}
}

// TestStripeFixtureMatchesSDK reads the fixture with stripe-go's types, so
// that the fields Parse uses mean what the SDK says they mean.
func TestStripeFixtureMatchesSDK(t *testing.T) {
	body := fixture(t, "stripe_session_completed.json")
	var e stripe.Event
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(e.Data.Raw, &cs); err != nil {
		t.Fatal(err)
	}
	ev, err := newStripe(t).Parse(&Request{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != e.ID || ev.Topic != string(e.Type) {
		t.Errorf("event %q %q, SDK %q %q", ev.ID, ev.Topic, e.ID, e.Type)
	}
	if cs.PaymentIntent == nil || ev.Order.ID != cs.ID || len(ev.Order.Aliases) != 1 || ev.Order.Aliases[0] != cs.PaymentIntent.ID {
		t.Errorf("order ID %q aliases %q, SDK session %q payment intent %+v", ev.Order.ID, ev.Order.Aliases, cs.ID, cs.PaymentIntent)
	}
	if ev.Order.Amount.Minor(ev.Order.Currency) != cs.AmountTotal || ev.Order.Currency != order.NormalizeCurrency(string(cs.Currency)) {
		t.Errorf("amount %s %s, SDK %d %s", ev.Order.Amount, ev.Order.Currency, cs.AmountTotal, cs.Currency)
	}
	if ev.Order.SessionRef != cs.ClientReferenceID || emailOf(ev.Order) != order.Hash(cs.CustomerDetails.Email) {
		t.Errorf("session %q email %q, SDK %q %q", ev.Order.SessionRef, emailOf(ev.Order), cs.ClientReferenceID, cs.CustomerDetails.Email)
	}
}

func TestStripeParse(t *testing.T) {
	session := fixture(t, "stripe_session_completed.json")
	refund := fixture(t, "stripe_charge_refunded.json")
	const pi, cs = "pi_3MUsg9Kw1WOEy4mk0NRevlp7", "cs_test_a1Z0vzfWhO0Ny7IyYmw95HRO16SJdg4tU1S8ZMjJPfqRFHaMJyppHWn7kT"
	tests := []struct {
		name   string
		cfg    Config
		body   []byte
		want   error
		kind   Kind
		id     string
		amount string
		cur    string
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "completed and paid", body: session, kind: KindOrder, id: cs, amount: "20.00", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if ev.ID != "evt_1MUsgCKw1WOEy4mk00EmXbfD" || ev.Topic != "checkout.session.completed" || o.EventID != ev.ID {
					t.Errorf("event %q %q %q", ev.ID, ev.Topic, o.EventID)
				}
				if o.Source != "webhook:stripe" || o.Event != "purchase" {
					t.Errorf("source %q event %q", o.Source, o.Event)
				}
				if o.SessionRef != "s1_Q2FkZHlQb3N0YmFjaw-sig" || emailOf(o) != order.Hash("captain.ronan@gmail.com") {
					t.Errorf("session %q email %q", o.SessionRef, emailOf(o))
				}
				if o.ClickIDs["gclid"] != "EAIaIQobChMI8vTx-Lm5_QIVB-7tCh0" || o.ClickIDs["campaign"] != "spring-sale" || len(o.ClickIDs) != 2 {
					t.Errorf("click IDs %v", o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Unix(1674828804, 0)) {
					t.Errorf("occurred %v", o.OccurredAt)
				}
				if ev.Reason != "test mode" {
					t.Errorf("reason %q", ev.Reason)
				}
			}},
		{name: "completed but unpaid is pending", body: replace(t, session, `"payment_status": "paid"`, `"payment_status": "unpaid"`),
			kind: KindOrder, id: cs, amount: "20", cur: "USD", status: order.StatusPending},
		{name: "no payment required and no intent: keyed by session", body: replace(t, replace(t, replace(t, session,
			`"payment_status": "paid"`, `"payment_status": "no_payment_required"`),
			`"payment_intent": "pi_3MUsg9Kw1WOEy4mk0NRevlp7"`, `"payment_intent": null`),
			`"amount_total": 2000`, `"amount_total": 0`),
			kind: KindOrder, id: cs, amount: "0", cur: "USD", status: order.StatusApproved},
		{name: "expanded payment intent", body: replace(t, session, `"payment_intent": "pi_3MUsg9Kw1WOEy4mk0NRevlp7"`, `"payment_intent": {"id": "pi_expanded", "object": "payment_intent"}`),
			kind: KindOrder, id: cs, amount: "20", cur: "USD", status: order.StatusApproved},
		{name: "unknown payment status ignored", body: replace(t, session, `"payment_status": "paid"`, `"payment_status": "weird"`), kind: KindIgnore},
		{name: "async succeeded", body: replace(t, session, `"type": "checkout.session.completed"`, `"type": "checkout.session.async_payment_succeeded"`),
			kind: KindOrder, id: cs, amount: "20", cur: "USD", status: order.StatusApproved},
		{name: "async failed", body: replace(t, session, `"type": "checkout.session.completed"`, `"type": "checkout.session.async_payment_failed"`),
			kind: KindStatus, id: cs, amount: "20", cur: "USD", status: order.StatusRejected},
		{name: "session ref from metadata", cfg: Config{SessionField: "ref"},
			body: replace(t, replace(t, session, `"client_reference_id": "s1_Q2FkZHlQb3N0YmFjaw-sig"`, `"client_reference_id": null`), `"campaign": "spring-sale"`, `"ref": "s1_meta"`),
			kind: KindOrder, id: cs, amount: "20", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "s1_meta" {
					t.Errorf("session %q", ev.Order.SessionRef)
				}
				if _, ok := ev.Order.ClickIDs["ref"]; ok {
					t.Error("session field copied to click IDs")
				}
			}},
		{name: "custom event name", cfg: Config{Event: "sale"}, body: session, kind: KindOrder, id: cs, amount: "20", cur: "USD", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.Event != "sale" {
					t.Errorf("event %q", ev.Order.Event)
				}
			}},
		{name: "zero-decimal currency", body: replace(t, replace(t, session, `"currency": "usd"`, `"currency": "jpy"`), `"amount_total": 2000`, `"amount_total": 500`),
			kind: KindOrder, id: cs, amount: "500", cur: "JPY", status: order.StatusApproved},
		{name: "bad currency kept as invalid", body: replace(t, session, `"currency": "usd"`, `"currency": "dollars"`),
			kind: KindOrder, id: cs, amount: "20", cur: "", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if len(ev.Order.Invalid) == 0 || len(ev.Order.Check()) == 0 {
					t.Error("an unreadable currency does not hold the order")
				}
			}},
		{name: "setup mode ignored", body: replace(t, session, `"mode": "payment"`, `"mode": "setup"`), kind: KindIgnore},
		{name: "expired ignored", body: replace(t, session, `"type": "checkout.session.completed"`, `"type": "checkout.session.expired"`), kind: KindIgnore},
		{name: "thin event ignored", body: []byte(`{"id":"evt_test_65R","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered"}`), kind: KindIgnore},
		{name: "full refund", body: refund, kind: KindStatus, id: pi, amount: "20", cur: "USD", status: order.StatusRefunded,
			check: func(t *testing.T, ev Event) {
				// A status update needs no identifiers: none are kept.
				if ev.Order.Customer != nil || ev.Reason != "" {
					t.Errorf("customer %+v reason %q", ev.Order.Customer, ev.Reason)
				}
				if len(ev.Order.Aliases) != 1 || ev.Order.Aliases[0] != "ch_3MUsg9Kw1WOEy4mk0xZ5aB7c" {
					t.Errorf("aliases %q", ev.Order.Aliases)
				}
			}},
		{name: "partial refund", body: replace(t, replace(t, refund, `"amount_refunded": 2000`, `"amount_refunded": 750`), `"refunded": true`, `"refunded": false`),
			kind: KindStatus, id: pi, amount: "7.50", cur: "USD", status: order.StatusRefunded,
			check: func(t *testing.T, ev Event) {
				if ev.Reason != "partial refund" {
					t.Errorf("reason %q", ev.Reason)
				}
			}},
		{name: "refund of a charge without intent", body: replace(t, refund, `"payment_intent": "pi_3MUsg9Kw1WOEy4mk0NRevlp7"`, `"payment_intent": null`),
			kind: KindStatus, id: "ch_3MUsg9Kw1WOEy4mk0xZ5aB7c", amount: "20", cur: "USD", status: order.StatusRefunded},
		{name: "invalid JSON", body: session[:len(session)/2], want: ErrMalformed},
		{name: "not an object", body: []byte(`["evt"]`), want: ErrMalformed},
		{name: "no event id", body: replace(t, session, `"id": "evt_1MUsgCKw1WOEy4mk00EmXbfD"`, `"id": null`), want: ErrMalformed},
		{name: "session without object", body: []byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{}}`), want: ErrMalformed},
		{name: "refund without charge", body: []byte(`{"id":"evt_1","object":"event","type":"charge.refunded","data":{"object":null}}`), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Secrets = []string{stripeSecret}
			p, err := NewStripe(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse(&Request{Body: tt.body, Now: testNow})
			wantErr(t, err, tt.want)
			checkInvariants(t, p, ev, err)
			if err != nil {
				return
			}
			if ev.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v (reason %q)", ev.Kind, tt.kind, ev.Reason)
			}
			if ev.Kind == KindIgnore {
				if ev.Reason == "" {
					t.Error("ignored without a reason")
				}
			} else {
				checkOrder(t, ev.Order, tt.id, tt.amount, tt.cur, tt.status)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
