package webhook

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// WooCommerce verifies and parses WooCommerce order webhooks (REST API v3
// payloads, topics order.created and order.updated).
//
// Order ID: the order's id, which is what the REST API, refunds and most
// thank-you pages (order-received/<id>) use. The display number ("number")
// equals it unless a sequential-numbering plugin is installed.
//
// Event ID: X-WC-Webhook-Delivery-ID. WooCommerce does not retry failed
// deliveries, and every order.updated is a new delivery, so repeated updates
// of one order are deduplicated downstream by (network, event, order ID),
// not here.
type WooCommerce struct{ cfg Config }

// NewWooCommerce builds a WooCommerce provider; cfg.Secrets are the
// webhooks' secrets. WooCommerce's hash can be changed by the
// woocommerce_webhook_hash_algorithm filter; only the default SHA-256 is
// supported (use NewGeneric otherwise).
func NewWooCommerce(cfg Config) (*WooCommerce, error) {
	c, err := cfg.normalize("woocommerce")
	if err != nil {
		return nil, err
	}
	return &WooCommerce{cfg: c}, nil
}

// Name returns "woocommerce".
func (w *WooCommerce) Name() string { return "woocommerce" }

// Verify checks X-WC-Webhook-Signature: base64 HMAC-SHA256 of the raw body.
// The one unsigned request accepted is the ping WooCommerce sends when a
// webhook is created (form body "webhook_id=<n>", no signature header),
// which must be answered 200 or the webhook is not saved as active.
func (w *WooCommerce) Verify(r *Request) error {
	if len(r.Body) == 0 {
		return fmt.Errorf("woocommerce: %w: empty body", ErrBadRequest)
	}
	sig := r.Header.Get("X-WC-Webhook-Signature")
	if sig == "" {
		if isWooPing(r) {
			return nil
		}
		return fmt.Errorf("woocommerce: %w: no X-WC-Webhook-Signature header", ErrSignature)
	}
	if err := checkShape("woocommerce", r, mediaJSON); err != nil {
		return err
	}
	if !macMatch(sha256.New, w.cfg.Secrets, []string{strings.TrimSpace(sig)}, encBase64, func(wr io.Writer) { wr.Write(r.Body) }) {
		return fmt.Errorf("woocommerce: %w: HMAC does not match", ErrSignature)
	}
	return nil
}

// isWooPing reports whether r has exactly the shape of WooCommerce's
// creation ping: no signature header, a form (or untyped) body that is
// "webhook_id=" followed by digits and nothing else.
func isWooPing(r *Request) bool {
	if r.Header.Get("X-WC-Webhook-Signature") != "" {
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !mediaIs(ct, mediaForm) {
		return false
	}
	id, ok := bytes.CutPrefix(r.Body, []byte("webhook_id="))
	return ok && len(id) <= 20 && len(id) > 0 && allDigits(string(id))
}

// wooStatus maps WooCommerce order statuses to kinds and order statuses.
var wooStatus = map[string]struct {
	kind   Kind
	status order.Status
}{
	"processing": {KindOrder, order.StatusApproved},
	"completed":  {KindOrder, order.StatusApproved},
	"pending":    {KindOrder, order.StatusPending},
	"on-hold":    {KindOrder, order.StatusPending},
	"cancelled":  {KindStatus, order.StatusRejected},
	"failed":     {KindStatus, order.StatusRejected},
	"refunded":   {KindStatus, order.StatusRefunded},
}

// Parse reads order.created and order.updated: processing and completed are
// approved orders, pending and on-hold pending ones; cancelled and failed
// reject the order, refunded refunds it; trash and unknown (plugin) statuses
// are ignored, as are other topics and the creation ping. A partial refund
// leaves the status unchanged and is not reported.
func (w *WooCommerce) Parse(r *Request) (Event, error) {
	if isWooPing(r) {
		return Event{Topic: "ping", Reason: "webhook creation ping"}, nil
	}
	ev := Event{
		ID:    r.Header.Get("X-WC-Webhook-Delivery-ID"),
		Topic: r.Header.Get("X-WC-Webhook-Topic"),
	}
	if err := validJSON("woocommerce", r.Body); err != nil {
		return Event{}, err
	}
	if ev.Topic == "" {
		return Event{}, fmt.Errorf("woocommerce: %w: no X-WC-Webhook-Topic header", ErrMalformed)
	}
	if ev.Topic != "order.created" && ev.Topic != "order.updated" {
		ev.Reason = "topic not used"
		return ev, nil
	}
	root := gjson.ParseBytes(r.Body)
	raw := root.Get("status").Str
	m, ok := wooStatus[raw]
	if !ok {
		ev.Reason = "order status " + strconv.Quote(truncate(raw, 32)) + " not used"
		return ev, nil
	}
	o := order.Order{
		Source:  "webhook:woocommerce",
		Event:   w.cfg.Event,
		EventID: ev.ID,
		Status:  m.status,
		ID:      idString(root.Get("id")),
	}
	if o.ID == "" {
		return Event{}, fmt.Errorf("woocommerce: %w: %s without an order id", ErrMalformed, ev.Topic)
	}
	setCurrency(&o, root.Get("currency").Str)
	setDecimalAmount(&o, root.Get("total"), "total")
	billing := root.Get("billing")
	o.Customer = order.NewCustomer(order.CustomerInfo{
		Email:      billing.Get("email").Str,
		Phone:      billing.Get("phone").Str,
		FirstName:  billing.Get("first_name").Str,
		LastName:   billing.Get("last_name").Str,
		City:       billing.Get("city").Str,
		Region:     billing.Get("state").Str,
		PostalCode: billing.Get("postcode").Str,
		Country:    billing.Get("country").Str,
	})
	o.Coupon = root.Get("coupon_lines.0.code").Str
	o.OccurredAt = wooTime(root.Get("date_paid_gmt").Str)
	if o.OccurredAt.IsZero() {
		o.OccurredAt = wooTime(root.Get("date_created_gmt").Str)
	}
	root.Get("meta_data").ForEach(func(_, m gjson.Result) bool {
		if m.Get("key").Str == w.cfg.SessionField {
			o.SessionRef = strings.TrimSpace(scalarString(m.Get("value")))
			return false
		}
		return true
	})
	ev.Kind, ev.Order = m.kind, o
	return ev, nil
}

// wooTime reads WooCommerce's *_gmt fields, which are UTC without a zone.
func wooTime(s string) time.Time {
	t, err := time.Parse("2006-01-02T15:04:05", s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
