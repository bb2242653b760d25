package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// WarriorPlus verifies and parses WarriorPlus IPN notifications: form posts
// to a product's Notification URL (Custom Integration).
//
// WarriorPlus signs nothing. It sends the account's security key itself in
// WP_SECURITYKEY when one is set in the account settings; the key must be
// set, and the field is compared with the configured keys in constant time
// (over their SHA-256 digests, so lengths leak nothing). Because the body
// carries the key, it must never be stored or logged as received.
//
// Order ID: WP_SALEID, with WP_SALE (sale_…), WP_TXNID (the payment
// processor's) and, for subscriptions, WP_SUBSCR_ID as aliases, so that a
// refund or a later payment naming any of them finds the sale.
//
// Event ID: IPN_ID, unique per message; without one, sale, action and
// payment number. WarriorPlus is known to send a sale twice when both a
// Notification URL and a Key Generation URL are set; the order ID makes the
// second one a duplicate downstream.
//
// Session reference: WP_SID, the buy button's "s" parameter, when it has
// the shape of one; otherwise it is candidate click ID "s". The vendor hop
// link's sub-ID and tracking ID (WP_HOP_SID, WP_HOP_TID) are read the same
// way under "sid" and "tid", and WP_CHECKOUT_CUSTOM, when it is a query
// string, like JVZoo's pass-through.
//
// Amount: WP_SALE_AMOUNT (for a later subscription payment
// WP_SUBSCR_PAYMENT_AMOUNT) in WP_SALE_CURRENCY, US dollars when absent.
//
// Tests: WarriorPlus documents no test flag, so none is recognised.
type WarriorPlus struct {
	cfg  Config
	keys [][sha256.Size]byte
}

// NewWarriorPlus builds a WarriorPlus provider. cfg.Secrets are the
// account's IPN security keys; cfg.Tolerance is unused.
func NewWarriorPlus(cfg Config) (*WarriorPlus, error) {
	c, err := cfg.normalize("warriorplus")
	if err != nil {
		return nil, err
	}
	w := &WarriorPlus{cfg: c}
	for _, k := range c.Secrets {
		w.keys = append(w.keys, sha256.Sum256([]byte(k)))
	}
	return w, nil
}

// Name returns "warriorplus".
func (w *WarriorPlus) Name() string { return "warriorplus" }

// Verify checks that the form carries WP_ACTION and a WP_SECURITYKEY equal
// to one of the configured keys.
func (w *WarriorPlus) Verify(r *Request) error {
	if err := checkShape("warriorplus", r, mediaForm); err != nil {
		return err
	}
	form, err := parseIPNForm("warriorplus", r.Body, ErrBadRequest, ErrSignature)
	if err != nil {
		return err
	}
	if !form.Has("WP_ACTION") {
		return fmt.Errorf("warriorplus: %w: no WP_ACTION: not a WarriorPlus notification", ErrBadRequest)
	}
	key := form.Get("WP_SECURITYKEY")
	if key == "" {
		return fmt.Errorf("warriorplus: %w: no WP_SECURITYKEY (set a security key in the WarriorPlus account settings)", ErrSignature)
	}
	sum := sha256.Sum256([]byte(key))
	matched := 0
	for i := range w.keys {
		matched |= subtle.ConstantTimeCompare(sum[:], w.keys[i][:])
	}
	if matched != 1 {
		return fmt.Errorf("warriorplus: %w: WP_SECURITYKEY does not match", ErrSignature)
	}
	return nil
}

// WarriorPlus actions.
const (
	wpSale            = "sale"
	wpRefund          = "refund"
	wpDispute         = "dispute"
	wpSubscrCreated   = "subscr_created"
	wpSubscrCompleted = "subscr_completed"
	wpSubscrCancelled = "subscr_cancelled"
)

// wpPaymentPending is the WP_PAYMENT_STATUS of a payment not yet cleared.
const wpPaymentPending = "Pending"

// maxWarriorPlusPayNo bounds WP_SUBSCR_PAYMENT_NUM, which is written into a
// rebill's ID when the payment has no transaction ID.
const maxWarriorPlusPayNo = 100000

// Parse reads a notification. sale, and subscr_created (the first payment
// of a subscription), are an approved order (pending when
// WP_PAYMENT_STATUS says Pending); subscr_completed is a rebill (event
// "rebill", ID WP_SUBSCR_PAYMENT_TXNID, OriginalID the subscription) from
// the second payment on, and the sale itself for payment 1; refund is a
// refund and dispute a chargeback, both refunded (the money is taken back;
// a dispute the seller later wins brings no new notification, as Gumroad's
// lost disputes do not). A cancelled, suspended or failed subscription
// moves no money and is ignored.
func (w *WarriorPlus) Parse(r *Request) (Event, error) {
	form, err := parseIPNForm("warriorplus", r.Body, ErrMalformed, ErrMalformed)
	if err != nil {
		return Event{}, err
	}
	action := strings.ToLower(strings.TrimSpace(form.Get("WP_ACTION")))
	if action == "" {
		return Event{}, fmt.Errorf("warriorplus: %w: no WP_ACTION", ErrMalformed)
	}
	ev := Event{Topic: action}
	payNo := 0
	if s := strings.TrimSpace(form.Get("WP_SUBSCR_PAYMENT_NUM")); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 && n <= maxWarriorPlusPayNo {
			payNo = n
		}
	}
	rebill := action == wpSubscrCompleted && payNo != 1
	switch action {
	case wpSale, wpSubscrCreated, wpSubscrCompleted, wpRefund, wpDispute:
	case wpSubscrCancelled:
		ev.Reason = "subscription cancelled: no money moved"
		return ev, nil
	default:
		ev.Reason = "action " + quoted(action) + " not used"
		return ev, nil
	}
	saleID := strings.TrimSpace(form.Get("WP_SALEID"))
	field := "WP_SALEID"
	if saleID == "" {
		saleID, field = strings.TrimSpace(form.Get("WP_SALE")), "WP_SALE"
	}
	if err := checkIPNID("warriorplus", field, saleID); err != nil {
		return Event{}, err
	}
	subscr := strings.TrimSpace(form.Get("WP_SUBSCR_ID"))
	ev.ID = strings.TrimSpace(form.Get("IPN_ID"))
	if ev.ID == "" || len(ev.ID) > maxIPNID {
		ev.ID = saleID + ":" + action + ":" + strconv.Itoa(payNo)
	}
	o := order.Order{
		Source:   "webhook:warriorplus",
		Event:    w.cfg.Event,
		ID:       saleID,
		EventID:  ev.ID,
		Customer: order.NewCustomer(order.CustomerInfo{Email: form.Get("WP_BUYER_EMAIL"), FullName: form.Get("WP_BUYER_NAME")}),
	}
	amount := form.Get("WP_SALE_AMOUNT")
	switch {
	case rebill:
		ev.Kind, o.Status, o.Event = KindOrder, order.StatusApproved, order.EventRebill
		o.ID = strings.TrimSpace(form.Get("WP_SUBSCR_PAYMENT_TXNID"))
		if o.ID == "" {
			if payNo == 0 {
				return Event{}, fmt.Errorf("warriorplus: %w: subscription payment without WP_SUBSCR_PAYMENT_TXNID or WP_SUBSCR_PAYMENT_NUM", ErrMalformed)
			}
			o.ID = saleID + "-" + strconv.Itoa(payNo)
		}
		if err := checkIPNID("warriorplus", "WP_SUBSCR_PAYMENT_TXNID", o.ID); err != nil {
			return Event{}, err
		}
		o.OriginalID = saleID
		if subscr != "" && len(subscr) <= maxIPNID {
			o.OriginalID = subscr
		}
		if a := form.Get("WP_SUBSCR_PAYMENT_AMOUNT"); strings.TrimSpace(a) != "" {
			amount = a
		}
	case action == wpRefund || action == wpDispute:
		ev.Kind, o.Status = KindStatus, order.StatusRefunded
		if action == wpDispute {
			ev.Reason = "chargeback (dispute)"
			o.Problems = append(o.Problems, "chargeback (dispute)")
		}
	default: // sale, subscr_created, first subscr_completed
		ev.Kind, o.Status = KindOrder, order.StatusApproved
		if strings.EqualFold(strings.TrimSpace(form.Get("WP_PAYMENT_STATUS")), wpPaymentPending) {
			o.Status = order.StatusPending
		}
		addAlias(&o, form.Get("WP_SALE"))
		addAlias(&o, form.Get("WP_TXNID"))
		addAlias(&o, subscr)
	}
	cur := form.Get("WP_SALE_CURRENCY")
	if strings.TrimSpace(cur) == "" {
		cur = "USD"
	}
	setCurrency(&o, cur)
	setDecimalText(&o, amount, "WP_SALE_AMOUNT")
	if ev.Kind == KindStatus {
		refundedAmount(&o)
	}
	trackingValue(&o, "s", form.Get("WP_SID"))
	passThroughQuery(&o, checkoutCustomQuery(form.Get("WP_CHECKOUT_CUSTOM")), w.cfg.SessionField)
	trackingValue(&o, "sid", form.Get("WP_HOP_SID"))
	trackingValue(&o, "tid", form.Get("WP_HOP_TID"))
	ev.Order = o
	return ev, nil
}

// checkoutCustomQuery returns WP_CHECKOUT_CUSTOM when it reads as a query
// string ("a=1&b=2"); its format is not documented, and anything else is
// left alone.
func checkoutCustomQuery(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "?")
	if !strings.Contains(s, "=") {
		return ""
	}
	return s
}

// Interface guard.
var _ Provider = (*WarriorPlus)(nil)
