package webhook

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Shopify verifies and parses Shopify order webhooks.
//
// Order ID: the order's numeric id as a string (450789469), not its name
// ("#1001"): the id is what refunds/create names in order_id and what the
// Admin API looks up. A thank-you page rule that reads the name keys a
// different order ID, so pick one per shop.
//
// Event ID: X-Shopify-Event-Id (Shopify's advice for deduplication), else
// X-Shopify-Webhook-Id; the lowercase un-prefixed "Events" headers
// (shopify-event-id, …) are read too.
type Shopify struct{ cfg Config }

// NewShopify builds a Shopify provider; cfg.Secrets are app client secrets
// (or the shop's webhook signing key).
func NewShopify(cfg Config) (*Shopify, error) {
	c, err := cfg.normalize("shopify")
	if err != nil {
		return nil, err
	}
	return &Shopify{cfg: c}, nil
}

// Name returns "shopify".
func (s *Shopify) Name() string { return "shopify" }

// Verify checks X-Shopify-Hmac-Sha256 (or shopify-hmac-sha256): base64
// HMAC-SHA256 of the raw body. Shopify signs no timestamp.
func (s *Shopify) Verify(r *Request) error {
	if err := checkShape("shopify", r, mediaJSON); err != nil {
		return err
	}
	sig := headerAny(r.Header, "X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256")
	if sig == "" {
		return fmt.Errorf("shopify: %w: no X-Shopify-Hmac-Sha256 header", ErrSignature)
	}
	if !macMatch(sha256.New, s.cfg.Secrets, []string{strings.TrimSpace(sig)}, encBase64, func(w io.Writer) { w.Write(r.Body) }) {
		return fmt.Errorf("shopify: %w: HMAC does not match", ErrSignature)
	}
	return nil
}

// Parse reads orders/paid (approved), orders/create (approved when
// financial_status is paid, else pending), orders/cancelled (rejected) and
// refunds/create (refunded, amount = the refund's successful refund
// transactions). Other topics are ignored.
func (s *Shopify) Parse(r *Request) (Event, error) {
	ev := Event{
		ID:    headerAny(r.Header, "X-Shopify-Event-Id", "Shopify-Event-Id", "X-Shopify-Webhook-Id", "Shopify-Webhook-Id"),
		Topic: headerAny(r.Header, "X-Shopify-Topic", "Shopify-Topic"),
	}
	if err := validJSON("shopify", r.Body); err != nil {
		return Event{}, err
	}
	if ev.Topic == "" {
		return Event{}, fmt.Errorf("shopify: %w: no X-Shopify-Topic header", ErrMalformed)
	}
	root := gjson.ParseBytes(r.Body)
	switch ev.Topic {
	case "orders/paid":
		return s.order(ev, root, KindOrder, order.StatusApproved)
	case "orders/create":
		st := order.StatusPending
		if root.Get("financial_status").Str == "paid" {
			st = order.StatusApproved
		}
		return s.order(ev, root, KindOrder, st)
	case "orders/cancelled":
		return s.order(ev, root, KindStatus, order.StatusRejected)
	case "refunds/create":
		return s.refund(ev, root)
	}
	ev.Reason = "topic not used"
	return ev, nil
}

func (s *Shopify) order(ev Event, root gjson.Result, kind Kind, st order.Status) (Event, error) {
	o := order.Order{
		Source:  "webhook:shopify",
		Event:   s.cfg.Event,
		EventID: ev.ID,
		Status:  st,
		ID:      idString(root.Get("id")),
	}
	if o.ID == "" {
		return Event{}, fmt.Errorf("shopify: %w: %s without an order id", ErrMalformed, ev.Topic)
	}
	setCurrency(&o, root.Get("currency").Str)
	setDecimalAmount(&o, root.Get("total_price"), "total_price")
	o.Customer = shopifyCustomer(root)
	o.Coupon = root.Get("discount_codes.0.code").Str
	o.OccurredAt = parseTime(root.Get("processed_at"))
	if o.OccurredAt.IsZero() {
		o.OccurredAt = parseTime(root.Get("created_at"))
	}
	root.Get("note_attributes").ForEach(func(_, a gjson.Result) bool {
		if a.Get("name").Str == s.cfg.SessionField {
			o.SessionRef = strings.TrimSpace(scalarString(a.Get("value")))
			return false
		}
		return true
	})
	o.ClickIDs = queryClickIDs(root.Get("landing_site").Str)
	if root.Get("test").Bool() {
		ev.Reason = "test order"
	}
	ev.Kind, ev.Order = kind, o
	return ev, nil
}

func (s *Shopify) refund(ev Event, root gjson.Result) (Event, error) {
	o := order.Order{
		Source:     "webhook:shopify",
		Event:      s.cfg.Event,
		EventID:    ev.ID,
		Status:     order.StatusRefunded,
		ID:         idString(root.Get("order_id")),
		OccurredAt: parseTime(root.Get("created_at")),
	}
	if o.ID == "" {
		return Event{}, fmt.Errorf("shopify: %w: refunds/create without order_id", ErrMalformed)
	}
	// The refunded money is in the refund's transactions; a refund of line
	// items only (restock, no money back) has none and carries no amount.
	var sum order.Decimal
	found := false
	root.Get("transactions").ForEach(func(_, t gjson.Result) bool {
		if t.Get("kind").Str != "refund" {
			return true
		}
		if st := t.Get("status").Str; st != "" && st != "success" {
			return true
		}
		if o.Currency == "" {
			setCurrency(&o, t.Get("currency").Str)
		}
		d, err := order.ParseDecimal(scalarString(t.Get("amount")))
		if err != nil {
			o.Invalid = append(o.Invalid, "transactions.amount: "+err.Error())
			return true
		}
		var ok bool
		if sum, ok = addDecimal(sum, d); !ok {
			o.Invalid = append(o.Invalid, "transactions.amount: sum out of range")
			found = false
			return false
		}
		found = true
		return true
	})
	o.Amount, o.HasAmount = sum, found
	ev.Kind, ev.Order = KindStatus, o
	return ev, nil
}

// shopifyCustomer hashes what an order says of its buyer: the order's
// e-mail and phone, else the customer's; names and address from the
// billing address, else the shipping address, else the customer.
func shopifyCustomer(root gjson.Result) *order.Customer {
	addr := root.Get("billing_address")
	if !addr.IsObject() {
		addr = root.Get("shipping_address")
	}
	cust := root.Get("customer")
	return order.NewCustomer(order.CustomerInfo{
		Email:      firstNonEmpty(root.Get("email").Str, root.Get("contact_email").Str, cust.Get("email").Str),
		Phone:      firstNonEmpty(root.Get("phone").Str, addr.Get("phone").Str, cust.Get("phone").Str),
		FirstName:  firstNonEmpty(addr.Get("first_name").Str, cust.Get("first_name").Str),
		LastName:   firstNonEmpty(addr.Get("last_name").Str, cust.Get("last_name").Str),
		City:       addr.Get("city").Str,
		Region:     firstNonEmpty(addr.Get("province_code").Str, addr.Get("province").Str),
		PostalCode: addr.Get("zip").Str,
		Country:    addr.Get("country_code").Str,
	})
}

// addDecimal adds two decimals exactly, reporting false on overflow.
func addDecimal(a, b order.Decimal) (order.Decimal, bool) {
	for a.Scale < b.Scale {
		if a.Coef > 1<<62/10 || a.Coef < -(1<<62/10) {
			return order.Decimal{}, false
		}
		a.Coef *= 10
		a.Scale++
	}
	for b.Scale < a.Scale {
		if b.Coef > 1<<62/10 || b.Coef < -(1<<62/10) {
			return order.Decimal{}, false
		}
		b.Coef *= 10
		b.Scale++
	}
	s := a.Coef + b.Coef
	if (a.Coef > 0 && b.Coef > 0 && s < 0) || (a.Coef < 0 && b.Coef < 0 && s >= 0) {
		return order.Decimal{}, false
	}
	return order.Decimal{Coef: s, Scale: a.Scale}, true
}
