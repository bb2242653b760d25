package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// LemonSqueezy verifies and parses Lemon Squeezy order and subscription
// webhooks.
//
// Order ID: data.id, the order's ID (order_refunded names the same one).
// Lemon Squeezy numbers orders, subscriptions and subscription invoices
// separately, so the other two are prefixed to stay apart from order IDs: a
// subscription's order carries "subscription:<id>" as an alias, and a
// renewal payment is the order "subscription-invoice:<id>" with the
// subscription as its OriginalID.
//
// Event ID: Lemon Squeezy sends none, so it is derived: "ls_" and the first
// 128 bits, in hex, of SHA-256(event name, NUL, raw body). A retry resends
// the same bytes and gets the same ID; two different events of one order
// differ in their name or in updated_at, so they do not collide.
type LemonSqueezy struct{ cfg Config }

// NewLemonSqueezy builds a Lemon Squeezy provider; cfg.Secrets are the
// webhooks' signing secrets.
func NewLemonSqueezy(cfg Config) (*LemonSqueezy, error) {
	c, err := cfg.normalize("lemonsqueezy")
	if err != nil {
		return nil, err
	}
	return &LemonSqueezy{cfg: c}, nil
}

// Name returns "lemonsqueezy".
func (l *LemonSqueezy) Name() string { return "lemonsqueezy" }

// Verify checks X-Signature: hex HMAC-SHA256 of the raw body. Lemon Squeezy
// signs no timestamp.
func (l *LemonSqueezy) Verify(r *Request) error {
	if err := checkShape("lemonsqueezy", r, mediaJSON); err != nil {
		return err
	}
	sig := strings.TrimSpace(r.Header.Get("X-Signature"))
	if sig == "" {
		return fmt.Errorf("lemonsqueezy: %w: no X-Signature header", ErrSignature)
	}
	if !macMatch(sha256.New, l.cfg.Secrets, []string{sig}, encHex, func(w io.Writer) { w.Write(r.Body) }) {
		return fmt.Errorf("lemonsqueezy: %w: HMAC does not match", ErrSignature)
	}
	return nil
}

// Lemon Squeezy events this provider acts on.
const (
	lemonOrderCreated      = "order_created"
	lemonOrderRefunded     = "order_refunded"
	lemonPaymentSuccess    = "subscription_payment_success"
	lemonPaymentRefunded   = "subscription_payment_refunded"
	lemonSubscriptionEnded = "subscription_cancelled"
)

// Parse reads order_created (status paid: approved order; pending: pending
// order; failed: rejected; refunded or partial_refund: refunded),
// order_refunded (refunded, amount = refunded_amount when sent, else the
// total), subscription_payment_success for a renewal (billing_reason
// renewal or updated: a rebill; the first payment, "initial", is the
// order_created of the same purchase and is ignored),
// subscription_payment_refunded (the renewal refunded) and
// subscription_cancelled (a cancellation of the subscription's sale).
// Amounts are integer minor units. Other events are ignored.
func (l *LemonSqueezy) Parse(r *Request) (Event, error) {
	if err := validJSON("lemonsqueezy", r.Body); err != nil {
		return Event{}, err
	}
	root := gjson.ParseBytes(r.Body)
	ev := Event{Topic: r.Header.Get("X-Event-Name")}
	if ev.Topic == "" {
		ev.Topic = root.Get("meta.event_name").Str
	}
	if ev.Topic == "" {
		return Event{}, fmt.Errorf("lemonsqueezy: %w: no X-Event-Name header or meta.event_name", ErrMalformed)
	}
	ev.ID = lemonEventID(ev.Topic, r.Body)
	attr := root.Get("data.attributes")
	id := idString(root.Get("data.id"))
	switch ev.Topic {
	case lemonOrderCreated, lemonOrderRefunded, lemonPaymentSuccess, lemonPaymentRefunded, lemonSubscriptionEnded:
	default:
		ev.Reason = "event not used"
		return ev, nil
	}
	if id == "" {
		return Event{}, fmt.Errorf("lemonsqueezy: %w: %s without data.id", ErrMalformed, ev.Topic)
	}
	o := order.Order{
		Source:     "webhook:lemonsqueezy",
		Event:      l.cfg.Event,
		EventID:    ev.ID,
		ID:         id,
		OccurredAt: parseTime(attr.Get("created_at")),
	}
	custom := root.Get("meta.custom_data")
	o.SessionRef = strings.TrimSpace(objectString(custom, l.cfg.SessionField))
	o.ClickIDs = metadataClickIDs(custom, l.cfg.SessionField)
	if attr.Get("test_mode").Bool() || root.Get("meta.test_mode").Bool() {
		ev.Reason = "test mode"
	}
	status := attr.Get("status").Str
	switch ev.Topic {
	case lemonSubscriptionEnded:
		o.Event, o.ID, o.Status = order.EventCancel, lemonSubscription(id), order.StatusRejected
		o.OccurredAt = parseTime(attr.Get("updated_at"))
		o.SessionRef, o.ClickIDs = "", nil
		ev.Kind, ev.Order = KindStatus, o
		return ev, nil
	case lemonPaymentSuccess, lemonPaymentRefunded:
		sub := idString(attr.Get("subscription_id"))
		if sub == "" {
			return Event{}, fmt.Errorf("lemonsqueezy: %w: %s without subscription_id", ErrMalformed, ev.Topic)
		}
		o.ID = "subscription-invoice:" + id
		if ev.Topic == lemonPaymentRefunded {
			o.Status = order.StatusRefunded
			ev.Kind = KindStatus
			break
		}
		switch reason := attr.Get("billing_reason").Str; reason {
		case "renewal", "updated":
		case "initial":
			ev.Reason = "first payment of a subscription: order_created reports the sale"
			return ev, nil
		default:
			ev.Reason = "billing_reason " + strconv.Quote(truncate(reason, 32)) + " not used"
			return ev, nil
		}
		if status != "paid" {
			ev.Reason = "subscription invoice status " + strconv.Quote(truncate(status, 32)) + " not paid"
			return ev, nil
		}
		o.Event, o.OriginalID, o.Status = order.EventRebill, lemonSubscription(sub), order.StatusApproved
		ev.Kind = KindOrder
	default: // orders
		switch {
		case ev.Topic == lemonOrderRefunded || status == "refunded" || status == "partial_refund":
			ev.Kind, o.Status = KindStatus, order.StatusRefunded
		case status == "paid":
			ev.Kind, o.Status = KindOrder, order.StatusApproved
		case status == "pending":
			ev.Kind, o.Status = KindOrder, order.StatusPending
		case status == "failed":
			ev.Kind, o.Status = KindStatus, order.StatusRejected
		default:
			ev.Reason = "order status " + strconv.Quote(truncate(status, 32)) + " not used"
			return ev, nil
		}
		if sub := idString(attr.Get("first_subscription_item.subscription_id")); sub != "" {
			o.Aliases = []string{lemonSubscription(sub)}
		}
	}
	setCurrency(&o, attr.Get("currency").Str)
	amount := attr.Get("total")
	if o.Status == order.StatusRefunded {
		if ra := attr.Get("refunded_amount"); ra.Int() > 0 {
			amount = ra
		}
	}
	setMinorAmount(&o, amount, "total")
	o.Customer = order.NewCustomer(order.CustomerInfo{Email: attr.Get("user_email").Str, FullName: attr.Get("user_name").Str})
	ev.Order = o
	return ev, nil
}

// lemonSubscription names a subscription apart from orders.
func lemonSubscription(id string) string { return "subscription:" + id }

// lemonEventID derives a stable ID for a delivery that has none.
func lemonEventID(name string, body []byte) string {
	h := sha256.New()
	io.WriteString(h, name)
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return "ls_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
