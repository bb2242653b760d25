package webhook

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// JVZoo verifies and parses JVZoo's JVZIPN notifications, form posts in two
// versions that a seller configures per product, each on its own URL:
//
//   - JVZIPN v1 (ctransaction, ctransreceipt, …): cverify is the first 8
//     hex digits, upper case, of SHA-1 over the values of every other posted
//     field in ascending order of name, each followed by "|", then the
//     secret key. Checked against JVZoo's own PHP sample and published
//     vectors.
//   - JVZIPN v2 (transaction_type, transaction_id, paykey, …): cverify is
//     the same digest over paykey|customer_email|product_name|
//     transaction_type|date|secret key. JVZoo's page names date as "used in
//     verification" but the formula itself is known only from two
//     integrations that quote JVZoo's documentation alike; no notification
//     signed by JVZoo has been available to test against. That digest covers
//     five fields only: transaction_id, total and the pass-through values
//     are not signed, which is why the event ID is built from signed fields
//     alone (a replay with an edited receipt is a duplicate).
//
// A body with ctransaction is v1, one with transaction_type or paykey v2.
// The check-sum is 32 bits; each wrong guess costs an attacker a request.
//
// Order ID: ctransreceipt (v1) or transaction_id (v2). Rebills append
// "-B<n>" to the first sale's receipt, which is OriginalID; an upsell names
// its parent sale in cupsellreceipt, also OriginalID.
//
// Event ID: v1 receipt, transaction type and ctranstime; v2 paykey,
// transaction type and date. JVZoo resends a notification hourly for 72
// hours until it is answered with 200.
//
// Session reference: the Config.SessionField parameter of the pass-through
// query string (cvendthru in v1, other_params in v2: the parameters given to
// the seller's buy link). The affiliate's tracking ID (caffitid or tid) is
// a candidate click ID "tid" (a session reference when it has that shape;
// JVZoo keeps only short alphanumeric tids, so it rarely can).
//
// Amounts are US dollars: ctransamount in v1 (the amount paid to the party
// notified; JVZoo's old page says pennies, real notifications carry
// dollars such as "47.00"), total in v2.
//
// Tests: JVZoo lists tests among the reasons it notifies but documents no
// field that marks one, so none is recognised.
type JVZoo struct{ cfg Config }

// NewJVZoo builds a JVZoo JVZIPN provider. cfg.Secrets are JVZIPN secret
// keys (My Account > Seller Settings); cfg.Tolerance is unused.
func NewJVZoo(cfg Config) (*JVZoo, error) {
	c, err := cfg.normalize("jvzoo")
	if err != nil {
		return nil, err
	}
	return &JVZoo{cfg: c}, nil
}

// Name returns "jvzoo".
func (j *JVZoo) Name() string { return "jvzoo" }

// jvzooVersion tells JVZIPN v1 from v2 by their fields; 0 is neither.
func jvzooVersion(form url.Values) int {
	switch {
	case form.Has("ctransaction"):
		return 1
	case form.Has("transaction_type") || form.Has("paykey"):
		return 2
	}
	return 0
}

// Verify checks cverify with every configured secret key, by the algorithm
// of the notification's version.
func (j *JVZoo) Verify(r *Request) error {
	if err := checkShape("jvzoo", r, mediaForm); err != nil {
		return err
	}
	form, err := parseIPNForm("jvzoo", r.Body, ErrBadRequest, ErrSignature)
	if err != nil {
		return err
	}
	version := jvzooVersion(form)
	if version == 0 {
		return fmt.Errorf("jvzoo: %w: neither ctransaction nor transaction_type: not a JVZIPN notification", ErrBadRequest)
	}
	sent := form.Get("cverify")
	if sent == "" {
		return fmt.Errorf("jvzoo: %w: no cverify field", ErrSignature)
	}
	want := make([][8]byte, len(j.cfg.Secrets))
	for i, secret := range j.cfg.Secrets {
		if version == 1 {
			want[i] = cverifyAll(form, secret)
		} else {
			want[i] = cverifyFields(secret, form.Get("paykey"), form.Get("customer_email"),
				form.Get("product_name"), form.Get("transaction_type"), form.Get("date"))
		}
	}
	if !cverifyMatch(sent, want) {
		return fmt.Errorf("jvzoo: %w: cverify does not match (JVZIPN v%d)", ErrSignature, version)
	}
	return nil
}

// JVZoo transaction types.
const (
	jvzSale           = "SALE"
	jvzRebill         = "BILL"
	jvzRebillV2       = "REBILL"
	jvzRefund         = "RFND"
	jvzChargeback     = "CGBK"
	jvzInsufficient   = "INSF"
	jvzCancelRebill   = "CANCEL-REBILL"
	jvzUncancelRebill = "UNCANCEL-REBILL"
)

// Parse reads a notification. SALE is an approved order; BILL an approved
// rebill (event "rebill") credited like the first sale; RFND a refund and
// CGBK a chargeback (both refunded: the money went back either way; v2
// reports chargebacks as RFND); INSF, a payment reported and then failed
// for insufficient funds, rejects the order. Cancelling or resuming a
// subscription moves no money and is ignored.
func (j *JVZoo) Parse(r *Request) (Event, error) {
	form, err := parseIPNForm("jvzoo", r.Body, ErrMalformed, ErrMalformed)
	if err != nil {
		return Event{}, err
	}
	f := jvzooFields{form: form}
	switch jvzooVersion(form) {
	case 1:
		f.receipt, f.txType, f.amount, f.email = "ctransreceipt", "ctransaction", "ctransamount", "ccustemail"
		f.passThrough, f.tid = "cvendthru", "caffitid"
	case 2:
		f.receipt, f.txType, f.amount, f.email = "transaction_id", "transaction_type", "total", "customer_email"
		f.passThrough, f.tid, f.v2 = "other_params", "tid", true
	default:
		return Event{}, fmt.Errorf("jvzoo: %w: neither ctransaction nor transaction_type", ErrMalformed)
	}
	return j.parse(f)
}

// jvzooFields names where one JVZIPN version keeps each value.
type jvzooFields struct {
	form                           url.Values
	receipt, txType, amount, email string
	passThrough, tid               string
	v2                             bool
}

func (j *JVZoo) parse(f jvzooFields) (Event, error) {
	form := f.form
	txType := strings.ToUpper(strings.TrimSpace(form.Get(f.txType)))
	if txType == "" {
		return Event{}, fmt.Errorf("jvzoo: %w: no %s", ErrMalformed, f.txType)
	}
	ev := Event{Topic: txType}
	switch txType {
	case jvzCancelRebill:
		ev.Reason = "subscription cancelled: no money moved"
		return ev, nil
	case jvzUncancelRebill:
		ev.Reason = "subscription resumed: no money moved"
		return ev, nil
	case jvzSale, jvzRebill, jvzRebillV2, jvzRefund, jvzChargeback, jvzInsufficient:
	default:
		ev.Reason = "transaction type " + quoted(txType) + " not used"
		return ev, nil
	}
	receipt := strings.TrimSpace(form.Get(f.receipt))
	if err := checkIPNID("jvzoo", f.receipt, receipt); err != nil {
		return Event{}, err
	}
	if f.v2 {
		ev.ID = "v2:" + form.Get("paykey") + ":" + txType + ":" + form.Get("date")
	} else {
		ev.ID = receipt + ":" + txType + ":" + form.Get("ctranstime")
	}
	o := order.Order{
		Source:   "webhook:jvzoo",
		Event:    j.cfg.Event,
		ID:       receipt,
		EventID:  ev.ID,
		Customer: order.NewCustomer(order.CustomerInfo{Email: form.Get(f.email)}),
	}
	if !f.v2 {
		// v2's date has no time zone, so only v1's epoch is kept.
		if n, err := strconv.ParseInt(form.Get("ctranstime"), 10, 64); err == nil && n > 0 {
			o.OccurredAt = time.Unix(n, 0).UTC()
		}
	}
	base, isRebill := rebillBase(receipt)
	switch txType {
	case jvzSale:
		ev.Kind, o.Status = KindOrder, order.StatusApproved
		if up := strings.TrimSpace(form.Get("cupsellreceipt")); up != "" && up != receipt && len(up) <= maxIPNID {
			o.OriginalID = up
		}
		if st := form.Get("status"); f.v2 && st != "" && !strings.EqualFold(st, "Completed") {
			o.Problems = append(o.Problems, "status "+quoted(st))
		}
	case jvzRebill, jvzRebillV2:
		ev.Kind, o.Status, o.Event = KindOrder, order.StatusApproved, order.EventRebill
		o.OriginalID = base
		if !isRebill {
			o.Problems = append(o.Problems, "rebill receipt has no -B<n> suffix: credited to the sale with the same receipt")
		}
	case jvzRefund, jvzChargeback:
		ev.Kind, o.Status = KindStatus, order.StatusRefunded
		switch {
		case txType == jvzChargeback:
			ev.Reason = "chargeback"
			o.Problems = append(o.Problems, "chargeback")
		case f.v2:
			ev.Reason = "refund or chargeback (JVZIPN v2 does not tell them apart)"
		}
	case jvzInsufficient:
		ev.Kind, o.Status = KindStatus, order.StatusRejected
		ev.Reason = "insufficient funds"
	}
	if ev.Kind == KindStatus && isRebill {
		o.Event, o.OriginalID = order.EventRebill, base
	}
	setCurrency(&o, "USD")
	setDecimalText(&o, form.Get(f.amount), f.amount)
	if ev.Kind == KindStatus {
		refundedAmount(&o)
	}
	passThroughQuery(&o, form.Get(f.passThrough), j.cfg.SessionField)
	trackingValue(&o, "tid", form.Get(f.tid))
	ev.Order = o
	return ev, nil
}

// Interface guard.
var _ Provider = (*JVZoo)(nil)
