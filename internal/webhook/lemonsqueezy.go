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

// LemonSqueezy verifies and parses Lemon Squeezy order webhooks.
//
// Order ID: data.id, the order's ID (order_refunded names the same one).
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

// Parse reads order_created (status paid: approved order; pending: pending
// order; failed: rejected; refunded or partial_refund: refunded) and
// order_refunded (refunded, amount = refunded_amount when sent, else the
// total). Amounts are integer minor units. Other events are ignored.
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
	if ev.Topic != "order_created" && ev.Topic != "order_refunded" {
		ev.Reason = "event not used"
		return ev, nil
	}
	attr := root.Get("data.attributes")
	o := order.Order{
		Source:     "webhook:lemonsqueezy",
		Event:      l.cfg.Event,
		EventID:    ev.ID,
		ID:         idString(root.Get("data.id")),
		OccurredAt: parseTime(attr.Get("created_at")),
	}
	if o.ID == "" {
		return Event{}, fmt.Errorf("lemonsqueezy: %w: %s without data.id", ErrMalformed, ev.Topic)
	}
	status := attr.Get("status").Str
	switch {
	case ev.Topic == "order_refunded" || status == "refunded" || status == "partial_refund":
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
	setCurrency(&o, attr.Get("currency").Str)
	amount := attr.Get("total")
	if o.Status == order.StatusRefunded {
		if ra := attr.Get("refunded_amount"); ra.Int() > 0 {
			amount = ra
		}
	}
	setMinorAmount(&o, amount, "total")
	o.Email = attr.Get("user_email").Str
	custom := root.Get("meta.custom_data")
	o.SessionRef = strings.TrimSpace(objectString(custom, l.cfg.SessionField))
	o.ClickIDs = metadataClickIDs(custom, l.cfg.SessionField)
	if attr.Get("test_mode").Bool() {
		ev.Reason = "test mode"
	}
	ev.Order = o
	return ev, nil
}

// lemonEventID derives a stable ID for a delivery that has none.
func lemonEventID(name string, body []byte) string {
	h := sha256.New()
	io.WriteString(h, name)
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return "ls_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
