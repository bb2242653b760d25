package webhook

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Paddle verifies and parses Paddle Billing notifications.
//
// Order ID: the transaction ID (txn_…); refund adjustments name it in
// transaction_id. A transaction that starts a subscription carries the
// subscription ID (sub_…) as an alias; a later transaction of the same
// subscription (origin subscription_recurring, or subscription_charge and
// subscription_update for one-off and upgrade charges) is a rebill with the
// subscription as its OriginalID, and subscription.canceled cancels the
// subscription's sale. Paddle Billing notifications carry no e-mail (only
// customer_id); data.customer.email is read when a sender includes the
// customer entity.
//
// Event ID: event_id (evt_…), shared by every delivery of one event;
// notification_id is used only when event_id is missing.
//
// transaction.paid and transaction.completed both yield an approved order
// with the same ID. "paid" means the payment was captured; "completed"
// follows once Paddle has finished processing (invoice, fees). Paddle does
// not guarantee their order, so whichever arrives first records the
// conversion and the other is a duplicate downstream. Reporting "paid" as
// pending instead would send networks a needless pending→approved update
// for every sale.
type Paddle struct{ cfg Config }

// NewPaddle builds a Paddle Billing provider; cfg.Secrets are notification
// destination secret keys (pdl_ntfset_…).
//
// cfg.Tolerance defaults to 5 minutes, not the 5 seconds Paddle's SDK
// helpers use: 5 s rejects genuine deliveries whenever this host's clock
// drifts a few seconds or a request waits in a proxy or TLS queue, and such
// rejections turn into hours of retries. A replay inside 5 minutes gains an
// attacker nothing, because event_id deduplicates it.
func NewPaddle(cfg Config) (*Paddle, error) {
	c, err := cfg.normalize("paddle")
	if err != nil {
		return nil, err
	}
	return &Paddle{cfg: c}, nil
}

// Name returns "paddle".
func (p *Paddle) Name() string { return "paddle" }

// Verify checks Paddle-Signature "ts=<unix>;h1=<hex>": HMAC-SHA256 over
// "<ts>:<body>". Several h1 values (sent during secret rotation) are
// accepted, any matching; |now-ts| must be within the tolerance.
func (p *Paddle) Verify(r *Request) error {
	if err := checkShape("paddle", r, mediaJSON); err != nil {
		return err
	}
	h := strings.TrimSpace(r.Header.Get("Paddle-Signature"))
	if h == "" {
		return fmt.Errorf("paddle: %w: no Paddle-Signature header", ErrSignature)
	}
	tsText, ts, h1, err := parsePaddleSignature(h)
	if err != nil {
		return err
	}
	if !macMatch(sha256.New, p.cfg.Secrets, h1, encHex, func(w io.Writer) {
		io.WriteString(w, tsText)
		w.Write([]byte{':'})
		w.Write(r.Body)
	}) {
		return fmt.Errorf("paddle: %w: no h1 signature matches", ErrSignature)
	}
	return checkTimestamp("paddle", ts, r.now(), p.cfg.Tolerance, false)
}

// parsePaddleSignature reads "ts=1671552777;h1=<hex>[;h1=<hex>…]". The
// timestamp is returned as sent, because that text is what Paddle signed.
// Unknown keys are ignored so that a future scheme does not break
// verification.
func parsePaddleSignature(h string) (tsText string, ts int64, h1 []string, err error) {
	for rest := h; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", 0, nil, fmt.Errorf("paddle: %w: invalid Paddle-Signature header", ErrSignature)
		}
		switch k {
		case "ts":
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n <= 0 || !allDigits(v) {
				return "", 0, nil, fmt.Errorf("paddle: %w: invalid timestamp in Paddle-Signature header", ErrSignature)
			}
			tsText, ts = v, n
		case "h1":
			h1 = append(h1, v)
		}
	}
	if tsText == "" {
		return "", 0, nil, fmt.Errorf("paddle: %w: no ts in Paddle-Signature header", ErrSignature)
	}
	if len(h1) == 0 {
		return "", 0, nil, fmt.Errorf("paddle: %w: no h1 in Paddle-Signature header", ErrSignature)
	}
	return tsText, ts, h1, nil
}

// Parse reads transaction.completed and transaction.paid (approved order,
// or rebill for a subscription's later transactions), approved refund or
// chargeback adjustments (adjustment.created or adjustment.updated:
// refunded, amount = the adjustment's total) and subscription.canceled.
// Refunds start as pending_approval and are ignored until Paddle approves
// them. Everything else is ignored.
func (p *Paddle) Parse(r *Request) (Event, error) {
	if err := validJSON("paddle", r.Body); err != nil {
		return Event{}, err
	}
	root := gjson.ParseBytes(r.Body)
	ev := Event{ID: root.Get("event_id").Str, Topic: root.Get("event_type").Str}
	if ev.ID == "" {
		ev.ID = root.Get("notification_id").Str
	}
	if ev.Topic == "" {
		return Event{}, fmt.Errorf("paddle: %w: no event_type", ErrMalformed)
	}
	data := root.Get("data")
	o := order.Order{
		Source:     "webhook:paddle",
		Event:      p.cfg.Event,
		EventID:    ev.ID,
		OccurredAt: parseTime(root.Get("occurred_at")),
	}
	switch ev.Topic {
	case "transaction.completed", "transaction.paid":
		o.ID = data.Get("id").Str
		if o.ID == "" {
			return Event{}, fmt.Errorf("paddle: %w: %s without a transaction id", ErrMalformed, ev.Topic)
		}
		o.Status = order.StatusApproved
		if sub := data.Get("subscription_id").Str; sub != "" {
			switch origin := data.Get("origin").Str; origin {
			case "subscription_recurring", "subscription_charge", "subscription_update":
				o.Event, o.OriginalID = order.EventRebill, sub
			case "subscription_payment_method_change":
				ev.Reason = "payment method change: no sale"
				return ev, nil
			default:
				o.Aliases = []string{sub}
			}
		}
		totals := data.Get("details.totals")
		cur := totals.Get("currency_code").Str
		if cur == "" {
			cur = data.Get("currency_code").Str
		}
		setCurrency(&o, cur)
		amount := totals.Get("grand_total")
		if !amount.Exists() {
			amount = totals.Get("total")
		}
		setMinorAmount(&o, amount, "details.totals.grand_total")
		custom := data.Get("custom_data")
		o.SessionRef = strings.TrimSpace(objectString(custom, p.cfg.SessionField))
		o.ClickIDs = metadataClickIDs(custom, p.cfg.SessionField)
		o.Customer = order.NewCustomer(order.CustomerInfo{
			Email:      data.Get("customer.email").Str,
			FullName:   data.Get("customer.name").Str,
			City:       data.Get("address.city").Str,
			Region:     data.Get("address.region").Str,
			PostalCode: data.Get("address.postal_code").Str,
			Country:    data.Get("address.country_code").Str,
		})
		ev.Kind, ev.Order = KindOrder, o
		return ev, nil
	case "subscription.canceled":
		o.ID = data.Get("id").Str
		if o.ID == "" {
			return Event{}, fmt.Errorf("paddle: %w: %s without a subscription id", ErrMalformed, ev.Topic)
		}
		o.Event, o.Status = order.EventCancel, order.StatusRejected
		if at := parseTime(data.Get("canceled_at")); !at.IsZero() {
			o.OccurredAt = at
		}
		ev.Kind, ev.Order = KindStatus, o
		return ev, nil
	case "adjustment.created", "adjustment.updated":
		action, status := data.Get("action").Str, data.Get("status").Str
		if action != "refund" && action != "chargeback" {
			ev.Reason = "adjustment action " + strconv.Quote(truncate(action, 32)) + " not used"
			return ev, nil
		}
		if status != "approved" {
			ev.Reason = "adjustment status " + strconv.Quote(truncate(status, 32)) + " not final"
			return ev, nil
		}
		o.ID = data.Get("transaction_id").Str
		if o.ID == "" {
			return Event{}, fmt.Errorf("paddle: %w: adjustment without transaction_id", ErrMalformed)
		}
		o.Status = order.StatusRefunded
		cur := data.Get("totals.currency_code").Str
		if cur == "" {
			cur = data.Get("currency_code").Str
		}
		setCurrency(&o, cur)
		setMinorAmount(&o, data.Get("totals.total"), "totals.total")
		ev.Kind, ev.Order = KindStatus, o
		return ev, nil
	}
	ev.Reason = "event type not used"
	return ev, nil
}
