package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Stripe verifies and parses Stripe webhooks: Checkout Sessions (including
// Payment Links), subscription renewals and cancellations, refunds and lost
// disputes.
//
// Order ID: the Checkout Session ID (cs_…), which is also what the success
// page receives as {CHECKOUT_SESSION_ID}, so a return page can tie the order
// to the visitor. The session's payment_intent, invoice and subscription,
// when it has them, are aliases: a later refund names the intent (or, in
// API versions before 2025-03-31, the invoice of the charge), a renewal and
// a cancellation name the subscription, so each finds the sale it belongs
// to.
//
// A renewal (invoice.paid with billing_reason subscription_cycle) is an
// order of its own, event order.EventRebill, keyed by the invoice ID (in_…)
// with the subscription ID as OriginalID. The first invoice of a
// subscription (billing_reason subscription_create) is ignored: the
// checkout.session.completed of the same purchase reports that sale, and
// reporting both would count it twice under two IDs. A subscription created
// without Checkout (through the API) is therefore not reported as a sale;
// its renewals still are.
//
// Event ID: the event's id (evt_…), identical on every retry.
type Stripe struct{ cfg Config }

// NewStripe builds a Stripe provider. cfg.Secrets are endpoint signing
// secrets (whsec_…); cfg.Tolerance defaults to 5 minutes, stripe-go's
// DefaultTolerance.
func NewStripe(cfg Config) (*Stripe, error) {
	c, err := cfg.normalize("stripe")
	if err != nil {
		return nil, err
	}
	return &Stripe{cfg: c}, nil
}

// Name returns "stripe".
func (s *Stripe) Name() string { return "stripe" }

// Verify checks the Stripe-Signature header: HMAC-SHA256 over "<t>.<body>",
// hex, against every v1 value (several during secret rotation) and every
// configured secret; v0 and unknown schemes are ignored. A timestamp older
// than the tolerance is rejected; one ahead of the clock is accepted, as
// stripe-go does, because only Stripe can sign it and it means our clock
// lags.
func (s *Stripe) Verify(r *Request) error {
	if err := checkShape("stripe", r, mediaJSON); err != nil {
		return err
	}
	h := r.Header.Get("Stripe-Signature")
	if h == "" {
		return fmt.Errorf("stripe: %w: no Stripe-Signature header", ErrSignature)
	}
	ts, sigs, err := parseStripeSignature(h)
	if err != nil {
		return err
	}
	var tsBuf [20]byte
	tsText := strconv.AppendInt(tsBuf[:0], ts, 10)
	matched := false
	var got [sha256.Size]byte
	for _, secret := range s.cfg.Secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(tsText)
		mac.Write([]byte{'.'})
		mac.Write(r.Body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if !decodeHex(got[:], sig) {
				continue // stripe-go ignores undecodable signatures
			}
			if hmac.Equal(want, got[:]) {
				matched = true
			}
		}
	}
	if !matched {
		return fmt.Errorf("stripe: %w: no v1 signature matches", ErrSignature)
	}
	return checkTimestamp("stripe", ts, r.now(), s.cfg.Tolerance, true)
}

// parseStripeSignature reads "t=1495999758,v1=ABC,v1=DEF,v0=GHI": the
// timestamp and every v1 value. As in stripe-go, a pair without exactly one
// "=" makes the header invalid, unknown keys are ignored, and a header with
// no v1 has no valid signature.
func parseStripeSignature(h string) (ts int64, v1 []string, err error) {
	haveTS := false
	for rest := h; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ",")
		pair = strings.TrimSpace(pair)
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.IndexByte(v, '=') >= 0 {
			return 0, nil, fmt.Errorf("stripe: %w: invalid Stripe-Signature header", ErrSignature)
		}
		switch k {
		case "t":
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n <= 0 {
				return 0, nil, fmt.Errorf("stripe: %w: invalid timestamp in Stripe-Signature header", ErrSignature)
			}
			ts, haveTS = n, true
		case "v1":
			v1 = append(v1, v)
		}
	}
	if !haveTS {
		return 0, nil, fmt.Errorf("stripe: %w: no timestamp in Stripe-Signature header", ErrSignature)
	}
	if len(v1) == 0 {
		return 0, nil, fmt.Errorf("stripe: %w: no v1 signature in Stripe-Signature header", ErrSignature)
	}
	return ts, v1, nil
}

// Stripe event types this provider acts on.
const (
	stripeSessionCompleted = "checkout.session.completed"
	stripeAsyncSucceeded   = "checkout.session.async_payment_succeeded"
	stripeAsyncFailed      = "checkout.session.async_payment_failed"
	stripeChargeRefunded   = "charge.refunded"
	stripeInvoicePaid      = "invoice.paid"
	stripeSubDeleted       = "customer.subscription.deleted"
	stripeDisputeClosed    = "charge.dispute.closed"
)

// Parse reads a Stripe event. checkout.session.completed is an order
// (approved when payment_status is paid or no_payment_required, pending
// when unpaid, as for bank debits that settle later);
// async_payment_succeeded approves it, async_payment_failed rejects it;
// charge.refunded marks it refunded with the cumulative amount_refunded, as
// does a dispute closed as lost; invoice.paid for a renewal is a rebill;
// customer.subscription.deleted is a cancellation of the subscription's
// sale. Everything else is ignored.
func (s *Stripe) Parse(r *Request) (Event, error) {
	if err := validJSON("stripe", r.Body); err != nil {
		return Event{}, err
	}
	root := gjson.ParseBytes(r.Body)
	ev := Event{ID: root.Get("id").Str, Topic: root.Get("type").Str}
	if obj := root.Get("object").Str; obj != "" && obj != "event" {
		// Thin events ("v2.core.event") carry no object to read.
		ev.Reason = "not a snapshot event: object " + strconv.Quote(truncate(obj, 32))
		return ev, nil
	}
	if ev.ID == "" || ev.Topic == "" {
		return Event{}, fmt.Errorf("stripe: %w: event without id or type", ErrMalformed)
	}
	data := root.Get("data.object")
	switch ev.Topic {
	case stripeSessionCompleted, stripeAsyncSucceeded, stripeAsyncFailed:
		return s.session(ev, root, data)
	case stripeChargeRefunded:
		return s.refund(ev, root, data)
	case stripeInvoicePaid:
		return s.invoice(ev, root, data)
	case stripeSubDeleted:
		return s.cancellation(ev, root, data)
	case stripeDisputeClosed:
		return s.dispute(ev, root, data)
	}
	ev.Reason = "event type not used"
	return ev, nil
}

func (s *Stripe) newOrder(ev Event, root gjson.Result) order.Order {
	return order.Order{
		Source:     "webhook:stripe",
		Event:      s.cfg.Event,
		EventID:    ev.ID,
		OccurredAt: parseTime(root.Get("created")),
	}
}

func (s *Stripe) session(ev Event, root, cs gjson.Result) (Event, error) {
	sessionID := cs.Get("id").Str
	if !cs.IsObject() || sessionID == "" {
		return Event{}, fmt.Errorf("stripe: %w: %s without a checkout session", ErrMalformed, ev.Topic)
	}
	if cs.Get("mode").Str == "setup" {
		ev.Reason = "setup-mode session: no purchase"
		return ev, nil
	}
	o := s.newOrder(ev, root)
	switch ev.Topic {
	case stripeSessionCompleted:
		switch ps := cs.Get("payment_status").Str; ps {
		case "paid", "no_payment_required":
			ev.Kind, o.Status = KindOrder, order.StatusApproved
		case "unpaid":
			ev.Kind, o.Status = KindOrder, order.StatusPending
		default:
			ev.Reason = "payment_status " + strconv.Quote(truncate(ps, 32)) + " not used"
			return ev, nil
		}
	case stripeAsyncSucceeded:
		ev.Kind, o.Status = KindOrder, order.StatusApproved
	case stripeAsyncFailed:
		ev.Kind, o.Status = KindStatus, order.StatusRejected
	}
	o.ID = sessionID
	for _, alias := range []string{stripeRef(cs, "payment_intent"), stripeRef(cs, "invoice"), stripeRef(cs, "subscription")} {
		if alias != "" {
			o.Aliases = append(o.Aliases, alias)
		}
	}
	setCurrency(&o, cs.Get("currency").Str)
	setMinorAmount(&o, cs.Get("amount_total"), "amount_total")
	meta := cs.Get("metadata")
	o.SessionRef = strings.TrimSpace(cs.Get("client_reference_id").Str)
	if o.SessionRef == "" {
		o.SessionRef = strings.TrimSpace(objectString(meta, s.cfg.SessionField))
	}
	details := cs.Get("customer_details")
	email := details.Get("email").Str
	if email == "" {
		email = cs.Get("customer_email").Str
	}
	o.Customer = stripeCustomer(email, details.Get("phone").Str, details.Get("name").Str, details.Get("address"))
	o.ClickIDs = metadataClickIDs(meta, s.cfg.SessionField)
	if !cs.Get("livemode").Bool() && cs.Get("livemode").Exists() {
		ev.Reason = "test mode"
	}
	ev.Order = o
	return ev, nil
}

func (s *Stripe) refund(ev Event, root, ch gjson.Result) (Event, error) {
	chargeID := ch.Get("id").Str
	if !ch.IsObject() || chargeID == "" {
		return Event{}, fmt.Errorf("stripe: %w: charge.refunded without a charge", ErrMalformed)
	}
	o := s.newOrder(ev, root)
	o.Status = order.StatusRefunded
	// A charge made outside Checkout may lack an intent; its ID is then the
	// best key there is.
	// The invoice, where the API version still names it on the charge,
	// says which renewal (or first invoice) the money came from.
	o.ID = firstNonEmpty(stripeRef(ch, "invoice"), stripeRef(ch, "payment_intent"), chargeID)
	for _, alias := range []string{stripeRef(ch, "payment_intent"), chargeID} {
		if alias != "" && alias != o.ID {
			o.Aliases = append(o.Aliases, alias)
		}
	}
	setCurrency(&o, ch.Get("currency").Str)
	setMinorAmount(&o, ch.Get("amount_refunded"), "amount_refunded")
	ev.Kind, ev.Order = KindStatus, o
	if ch.Get("refunded").Exists() && !ch.Get("refunded").Bool() {
		ev.Reason = "partial refund"
	}
	return ev, nil
}

// invoice reads invoice.paid. A renewal (billing_reason
// subscription_cycle) is a rebill keyed by the invoice, its OriginalID the
// subscription; anything else (the first invoice, one-off and manual
// invoices, plan changes) is ignored with its billing reason, as is a
// renewal that charged nothing (a trial or a 100% coupon).
func (s *Stripe) invoice(ev Event, root, inv gjson.Result) (Event, error) {
	invoiceID := inv.Get("id").Str
	if !inv.IsObject() || invoiceID == "" {
		return Event{}, fmt.Errorf("stripe: %w: invoice.paid without an invoice", ErrMalformed)
	}
	switch reason := inv.Get("billing_reason").Str; reason {
	case "subscription_cycle":
	case "subscription_create":
		ev.Reason = "first invoice of a subscription: checkout.session.completed reports the sale"
		return ev, nil
	default:
		ev.Reason = "billing_reason " + strconv.Quote(truncate(reason, 40)) + " is not a renewal"
		return ev, nil
	}
	sub := stripeInvoiceSubscription(inv)
	if sub == "" {
		return Event{}, fmt.Errorf("stripe: %w: renewal invoice without a subscription", ErrMalformed)
	}
	if paid := inv.Get("amount_paid"); paid.Type == gjson.Number && paid.Int() == 0 {
		ev.Reason = "renewal invoice paid nothing"
		return ev, nil
	}
	o := s.newOrder(ev, root)
	o.Event, o.ID, o.OriginalID, o.Status = order.EventRebill, invoiceID, sub, order.StatusApproved
	if paidAt := parseTime(inv.Get("status_transitions.paid_at")); !paidAt.IsZero() {
		o.OccurredAt = paidAt
	}
	setCurrency(&o, inv.Get("currency").Str)
	setMinorAmount(&o, inv.Get("amount_paid"), "amount_paid")
	o.Customer = stripeCustomer(inv.Get("customer_email").Str, inv.Get("customer_phone").Str,
		inv.Get("customer_name").Str, inv.Get("customer_address"))
	if !inv.Get("livemode").Bool() && inv.Get("livemode").Exists() {
		ev.Reason = "test mode"
	}
	ev.Kind, ev.Order = KindOrder, o
	return ev, nil
}

// stripeInvoiceSubscription reads an invoice's subscription, named under
// parent.subscription_details since API version 2025-03-31 and at the top
// level before.
func stripeInvoiceSubscription(inv gjson.Result) string {
	if sub := stripeRef(inv.Get("parent.subscription_details"), "subscription"); sub != "" {
		return sub
	}
	return stripeRef(inv, "subscription")
}

// cancellation reads customer.subscription.deleted: the subscription's sale
// is cancelled (no money moves), named by the subscription ID, an alias of
// the checkout session that sold it.
func (s *Stripe) cancellation(ev Event, root, sub gjson.Result) (Event, error) {
	subID := sub.Get("id").Str
	if !sub.IsObject() || subID == "" {
		return Event{}, fmt.Errorf("stripe: %w: %s without a subscription", ErrMalformed, ev.Topic)
	}
	o := s.newOrder(ev, root)
	o.Event, o.ID, o.Status = order.EventCancel, subID, order.StatusRejected
	if at := parseTime(sub.Get("canceled_at")); !at.IsZero() {
		o.OccurredAt = at
	}
	ev.Kind, ev.Order = KindStatus, o
	return ev, nil
}

// dispute reads charge.dispute.closed: a dispute the merchant lost takes
// the money back, so the order is refunded by the disputed amount; won and
// other outcomes change nothing.
func (s *Stripe) dispute(ev Event, root, dp gjson.Result) (Event, error) {
	if !dp.IsObject() || dp.Get("id").Str == "" {
		return Event{}, fmt.Errorf("stripe: %w: %s without a dispute", ErrMalformed, ev.Topic)
	}
	if st := dp.Get("status").Str; st != "lost" {
		ev.Reason = "dispute " + strconv.Quote(truncate(st, 32)) + ": the money stays"
		return ev, nil
	}
	o := s.newOrder(ev, root)
	o.Status = order.StatusRefunded
	o.ID = firstNonEmpty(stripeRef(dp, "payment_intent"), stripeRef(dp, "charge"))
	if o.ID == "" {
		return Event{}, fmt.Errorf("stripe: %w: dispute without a charge", ErrMalformed)
	}
	setCurrency(&o, dp.Get("currency").Str)
	setMinorAmount(&o, dp.Get("amount"), "amount")
	ev.Kind, ev.Order, ev.Reason = KindStatus, o, "chargeback"
	return ev, nil
}

// stripeRef reads a reference field (payment_intent, invoice, …), which is
// an ID string or, when the sender expanded it, an object with an id.
func stripeRef(obj gjson.Result, field string) string {
	ref := obj.Get(field)
	if ref.IsObject() {
		return ref.Get("id").Str
	}
	return ref.Str
}

// stripeCustomer hashes what a session or invoice says of its customer.
func stripeCustomer(email, phone, name string, address gjson.Result) *order.Customer {
	return order.NewCustomer(order.CustomerInfo{
		Email:      email,
		Phone:      phone,
		FullName:   name,
		City:       address.Get("city").Str,
		Region:     address.Get("state").Str,
		PostalCode: address.Get("postal_code").Str,
		Country:    address.Get("country").Str,
	})
}

// metadataClickIDs copies string metadata (except the session field) as
// candidate click IDs; the caller keeps only known click parameters.
func metadataClickIDs(meta gjson.Result, skip string) map[string]string {
	if !meta.IsObject() {
		return nil
	}
	var out map[string]string
	meta.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "" || k.Str == skip || v.Type != gjson.String || v.Str == "" {
			return true
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k.Str] = v.Str
		return len(out) < maxClickIDs
	})
	return out
}
