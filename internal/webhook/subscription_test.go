package webhook

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	"github.com/PaddleHQ/paddle-go-sdk/v4/pkg/paddlenotification"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// subscriptionCase is one provider payload in a subscription's life: what
// kind of event it must be and how it names its order.
type subscriptionCase struct {
	name       string
	req        *Request
	kind       Kind
	event      string
	id         string
	originalID string
	aliases    []string
	status     order.Status
	amount     string
	cur        string
	reason     string // a substring of Event.Reason, for ignored events
}

func runSubscriptionCases(t *testing.T, p Provider, cases []subscriptionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every payload is signed the provider's way and must verify.
			if err := p.Verify(tc.req); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			ev, ok := parseCase(t, p, tc.req, nil, tc.kind)
			if !ok {
				return
			}
			if tc.kind == KindIgnore {
				if !strings.Contains(ev.Reason, tc.reason) {
					t.Errorf("reason %q, want it to say %q", ev.Reason, tc.reason)
				}
				return
			}
			o := ev.Order
			checkOrder(t, o, tc.id, tc.amount, tc.cur, tc.status)
			if o.Event != tc.event || o.OriginalID != tc.originalID {
				t.Errorf("event %q original %q, want %q %q", o.Event, o.OriginalID, tc.event, tc.originalID)
			}
			for _, a := range tc.aliases {
				if !slices.Contains(o.Aliases, a) {
					t.Errorf("aliases %q lack %q", o.Aliases, a)
				}
			}
		})
	}
}

// stripeReq signs body with stripe-go's test helper.
func stripeReq(body []byte) *Request {
	return &Request{Header: hdr("Content-Type", "application/json", "Stripe-Signature", stripeSigned(body, stripeSecret, testNow)),
		Body: body, Now: testNow}
}

// TestStripeSubscriptionLife follows one subscription: the checkout that
// sells it carries the subscription and first invoice as aliases, the
// first invoice is not a second sale, a renewal is a rebill naming the
// subscription, a refund of the renewal names its invoice (API versions
// that still name it on the charge), a lost dispute refunds, and the
// cancellation names the subscription.
func TestStripeSubscriptionLife(t *testing.T) {
	session := fixture(t, "stripe_session_subscription.json")
	renewal := fixture(t, "stripe_invoice_paid_cycle.json")
	deleted := fixture(t, "stripe_subscription_deleted.json")
	const (
		cs  = "cs_test_b1SubSessionKw1WOEy4mkQ2FkZHlTdWJzY3JpcHRpb24"
		sub = "sub_1PzSubKw1WOEy4mkMonthly"
		in1 = "in_1PzSubKw1WOEy4mkFirstInv"
		in2 = "in_1QCycleKw1WOEy4mkRenewal"
	)
	refundOfRenewal := []byte(`{"id":"evt_r","object":"event","created":1729200000,"type":"charge.refunded","data":{"object":{"id":"ch_renewal","object":"charge","amount":1900,"amount_refunded":1900,"currency":"eur","invoice":"` + in2 + `","payment_intent":"pi_renewal","refunded":true}}}`)
	lostDispute := []byte(`{"id":"evt_d","object":"event","created":1729300000,"type":"charge.dispute.closed","data":{"object":{"id":"dp_1","object":"dispute","amount":1900,"charge":"ch_renewal","currency":"eur","payment_intent":"pi_renewal","status":"lost"}}}`)
	wonDispute := []byte(strings.Replace(string(lostDispute), `"status":"lost"`, `"status":"won"`, 1))
	runSubscriptionCases(t, newStripe(t), []subscriptionCase{
		{name: "checkout sells the subscription", req: stripeReq(session), kind: KindOrder, event: "purchase", id: cs,
			aliases: []string{sub, in1}, status: order.StatusApproved, amount: "19.00", cur: "EUR"},
		{name: "first invoice is not a second sale",
			req:  stripeReq(replace(t, renewal, `"billing_reason": "subscription_cycle"`, `"billing_reason": "subscription_create"`)),
			kind: KindIgnore, reason: "checkout.session.completed reports the sale"},
		{name: "plan change invoice ignored",
			req:  stripeReq(replace(t, renewal, `"billing_reason": "subscription_cycle"`, `"billing_reason": "subscription_update"`)),
			kind: KindIgnore, reason: "subscription_update"},
		{name: "renewal is a rebill", req: stripeReq(renewal), kind: KindOrder, event: order.EventRebill, id: in2,
			originalID: sub, status: order.StatusApproved, amount: "19", cur: "EUR"},
		{name: "renewal of an older API version names the subscription at the top level",
			req: stripeReq(replace(t, replace(t, renewal, `"subscription": "sub_1PzSubKw1WOEy4mkMonthly"`, `"subscription": null`),
				`"billing_reason": "subscription_cycle",`, `"billing_reason": "subscription_cycle", "subscription": "sub_old",`)),
			kind: KindOrder, event: order.EventRebill, id: in2, originalID: "sub_old", status: order.StatusApproved, amount: "19", cur: "EUR"},
		{name: "renewal that paid nothing ignored",
			req:  stripeReq(replace(t, renewal, `"amount_paid": 1900`, `"amount_paid": 0`)),
			kind: KindIgnore, reason: "paid nothing"},
		{name: "refund of the renewal", req: stripeReq(refundOfRenewal), kind: KindStatus, event: "purchase", id: in2,
			aliases: []string{"pi_renewal", "ch_renewal"}, status: order.StatusRefunded, amount: "19", cur: "EUR"},
		{name: "lost dispute refunds", req: stripeReq(lostDispute), kind: KindStatus, event: "purchase", id: "pi_renewal",
			status: order.StatusRefunded, amount: "19", cur: "EUR"},
		{name: "won dispute changes nothing", req: stripeReq(wonDispute), kind: KindIgnore, reason: "won"},
		{name: "cancellation names the subscription", req: stripeReq(deleted), kind: KindStatus, event: order.EventCancel,
			id: sub, status: order.StatusRejected},
	})

	// The renewal's customer is hashed from the invoice: e-mail, and the
	// German national phone number with Germany's calling code.
	ev, err := newStripe(t).Parse(stripeReq(renewal))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Order.Customer
	if c == nil || c.Email != order.Hash("erika.mustermann@example.de") || c.PhoneE164 != order.Hash("+4930123456") ||
		c.FirstName != order.Hash("erika") || c.City != order.Hash("berlin") || c.Country != order.Hash("de") {
		t.Errorf("customer %+v", c)
	}
	if !ev.Order.OccurredAt.Equal(time.Unix(1729159259, 0)) {
		t.Errorf("occurred %v, want the invoice's paid_at", ev.Order.OccurredAt)
	}
}

// TestStripeSubscriptionFixturesMatchSDK reads the new fixtures with
// stripe-go's types, so that the fields Parse uses mean what the SDK says.
func TestStripeSubscriptionFixturesMatchSDK(t *testing.T) {
	var e stripe.Event
	if err := json.Unmarshal(fixture(t, "stripe_invoice_paid_cycle.json"), &e); err != nil {
		t.Fatal(err)
	}
	var inv stripe.Invoice
	if err := json.Unmarshal(e.Data.Raw, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.BillingReason != stripe.InvoiceBillingReasonSubscriptionCycle || inv.Parent == nil || inv.Parent.SubscriptionDetails == nil ||
		inv.Parent.SubscriptionDetails.Subscription.ID != "sub_1PzSubKw1WOEy4mkMonthly" || inv.AmountPaid != 1900 ||
		inv.StatusTransitions.PaidAt != 1729159259 || inv.CustomerEmail == "" {
		t.Errorf("SDK reads the invoice as %+v", inv)
	}
	if err := json.Unmarshal(fixture(t, "stripe_session_subscription.json"), &e); err != nil {
		t.Fatal(err)
	}
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(e.Data.Raw, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Mode != stripe.CheckoutSessionModeSubscription || cs.Subscription == nil || cs.Subscription.ID != "sub_1PzSubKw1WOEy4mkMonthly" ||
		cs.Invoice == nil || cs.Invoice.ID != "in_1PzSubKw1WOEy4mkFirstInv" {
		t.Errorf("SDK reads the session as mode %q subscription %+v invoice %+v", cs.Mode, cs.Subscription, cs.Invoice)
	}
	if err := json.Unmarshal(fixture(t, "stripe_subscription_deleted.json"), &e); err != nil {
		t.Fatal(err)
	}
	var sub stripe.Subscription
	if err := json.Unmarshal(e.Data.Raw, &sub); err != nil {
		t.Fatal(err)
	}
	if e.Type != "customer.subscription.deleted" || sub.Status != stripe.SubscriptionStatusCanceled || sub.CanceledAt == 0 {
		t.Errorf("SDK reads the subscription as %q %+v", e.Type, sub)
	}
}

// paddleSignedReq signs body the way Paddle does, checked against the
// SDK's own verifier.
func paddleSignedReq(t *testing.T, body []byte) *Request {
	t.Helper()
	sig := paddleSig(paddleVectorSecret, testNow.Unix(), body)
	hr, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	hr.Header.Set("Paddle-Signature", sig)
	if ok, err := paddle.NewWebhookVerifier(paddleVectorSecret).Verify(hr); !ok || err != nil {
		t.Fatalf("paddle-go-sdk rejects the signature: %v %v", ok, err)
	}
	return paddleReq(body, sig, testNow)
}

func TestPaddleSubscriptionLife(t *testing.T) {
	first := fixture(t, "paddle_transaction_completed.json")
	recurring := fixture(t, "paddle_transaction_recurring.json")
	canceled := fixture(t, "paddle_subscription_canceled.json")
	const sub = "sub_01hv8x29kz0t586xy6zn1a62ny"
	firstOfSub := replace(t, first, `"subscription_id":null`, `"subscription_id":"`+sub+`"`)
	p, err := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	if err != nil {
		t.Fatal(err)
	}
	runSubscriptionCases(t, p, []subscriptionCase{
		{name: "first transaction sells the subscription", req: paddleSignedReq(t, firstOfSub), kind: KindOrder, event: "purchase",
			id: "txn_01hv8m0mnx3sj85e7gxc6kga03", aliases: []string{sub}, status: order.StatusApproved, amount: "59.99", cur: "EUR"},
		{name: "renewal is a rebill", req: paddleSignedReq(t, recurring), kind: KindOrder, event: order.EventRebill,
			id: "txn_01hxq2r0a2c4e6g8j0l2n4q6s8", originalID: sub, status: order.StatusApproved, amount: "59.99", cur: "EUR"},
		{name: "payment method change is no sale",
			req:  paddleSignedReq(t, replace(t, recurring, `"origin":"subscription_recurring"`, `"origin":"subscription_payment_method_change"`)),
			kind: KindIgnore, reason: "payment method"},
		{name: "cancellation names the subscription", req: paddleSignedReq(t, canceled), kind: KindStatus, event: order.EventCancel,
			id: sub, status: order.StatusRejected},
	})
	var txn paddlenotification.TransactionCompleted
	if err := json.Unmarshal(recurring, &txn); err != nil {
		t.Fatal(err)
	}
	if string(txn.Data.Origin) != string(paddlenotification.TransactionOriginSubscriptionRecurring) || txn.Data.SubscriptionID == nil || *txn.Data.SubscriptionID != sub {
		t.Errorf("SDK reads the renewal as origin %q subscription %v", txn.Data.Origin, txn.Data.SubscriptionID)
	}
	var sc paddlenotification.SubscriptionCanceled
	if err := json.Unmarshal(canceled, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Data.ID != sub || sc.Data.CanceledAt == nil {
		t.Errorf("SDK reads the cancellation as %+v", sc.Data)
	}
}

func TestLemonSqueezySubscriptionLife(t *testing.T) {
	order1 := fixture(t, "lemonsqueezy_order_subscription.json")
	payment := fixture(t, "lemonsqueezy_subscription_payment_success.json")
	cancelled := fixture(t, "lemonsqueezy_subscription_cancelled.json")
	refunded := replace(t, replace(t, payment, `"event_name":"subscription_payment_success"`, `"event_name":"subscription_payment_refunded"`),
		`"status":"paid"`, `"status":"refunded"`)
	p, err := NewLemonSqueezy(Config{Secrets: []string{lemonSecret}})
	if err != nil {
		t.Fatal(err)
	}
	runSubscriptionCases(t, p, []subscriptionCase{
		// Order 2 and subscription 3 are numbered apart; the alias keeps
		// subscription 3 from ever meaning order 3.
		{name: "order sells the subscription", req: lemonReq(order1, "order_created"), kind: KindOrder, event: "purchase",
			id: "2", aliases: []string{"subscription:3"}, status: order.StatusApproved, amount: "11.99", cur: "USD"},
		{name: "first payment is not a second sale",
			req:  lemonReq(replace(t, payment, `"billing_reason":"renewal"`, `"billing_reason":"initial"`), "subscription_payment_success"),
			kind: KindIgnore, reason: "order_created reports the sale"},
		{name: "renewal is a rebill", req: lemonReq(payment, "subscription_payment_success"), kind: KindOrder, event: order.EventRebill,
			id: "subscription-invoice:7", originalID: "subscription:3", status: order.StatusApproved, amount: "9.99", cur: "USD"},
		{name: "unpaid renewal ignored",
			req:  lemonReq(replace(t, payment, `"status":"paid"`, `"status":"pending"`), "subscription_payment_success"),
			kind: KindIgnore, reason: "not paid"},
		{name: "refunded renewal", req: lemonReq(refunded, "subscription_payment_refunded"), kind: KindStatus, event: "purchase",
			id: "subscription-invoice:7", status: order.StatusRefunded, amount: "9.99", cur: "USD"},
		{name: "cancellation names the subscription", req: lemonReq(cancelled, "subscription_cancelled"), kind: KindStatus,
			event: order.EventCancel, id: "subscription:3", status: order.StatusRejected},
	})
	ev, err := p.Parse(lemonReq(payment, "subscription_payment_success"))
	if err != nil {
		t.Fatal(err)
	}
	if emailOf(ev.Order) != order.Hash("johndoe@example.com") || ev.Order.Customer.FirstName != order.Hash("john") || ev.Reason != "test mode" {
		t.Errorf("customer %+v reason %q", ev.Order.Customer, ev.Reason)
	}
	if ev.Order.SessionRef != "s1_TGVtb25TdWI-sig" {
		t.Errorf("session %q", ev.Order.SessionRef)
	}
}
