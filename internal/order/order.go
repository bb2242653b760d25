package order

import "time"

// Status is where an order stands with the shop.
type Status string

// Order statuses. A network is told of approved and pending orders; rejected
// and refunded ones become status updates where the destination takes them.
const (
	StatusApproved Status = "approved"
	StatusPending  Status = "pending"
	StatusRejected Status = "rejected"
	StatusRefunded Status = "refunded"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusApproved, StatusPending, StatusRejected, StatusRefunded:
		return true
	}
	return false
}

// Subscription events. EventRebill is a subscription's renewal payment:
// it is credited to the networks credited with the subscription's first
// sale (Order.OriginalID names that sale). EventCancel is a subscription's
// cancellation: no money moves and the first sale stays valid, so it comes
// as a rejected status update for destinations that follow a customer's
// lifetime (recurring-commission programs) and is never sent to a
// destination that has not asked for it by name.
const (
	EventRebill = "rebill"
	EventCancel = "cancellation"
)

// Item is one line of an order.
type Item struct {
	ID       string  `json:"id,omitempty"`
	Name     string  `json:"name,omitempty"`
	Price    Decimal `json:"price"`
	Quantity int64   `json:"quantity,omitempty"`
}

// Order is a sale (or lead, sign-up, …) as the shop reports it, from a
// confirmation page or a webhook. It carries no attribution: which clicks
// earned it is decided later.
type Order struct {
	// Source names where the order was seen: "page:<rule>" or "webhook:<provider>".
	Source string `json:"source"`
	// Event is the conversion event: purchase, lead, signup, ftd, refund, …
	Event string `json:"event"`
	// ID is the shop's order ID; with the event and network it forms the
	// idempotency key.
	ID string `json:"id"`
	// Aliases are other IDs the platform uses for the same order (Stripe's
	// payment intent beside the Checkout Session), so that a later status
	// update naming an alias finds the order.
	Aliases []string `json:"aliases,omitempty"`
	// Amount is the order value; HasAmount is false when no amount was found.
	Amount    Decimal `json:"amount"`
	HasAmount bool    `json:"has_amount,omitempty"`
	// Currency is the ISO 4217 code, upper case, or "".
	Currency string `json:"currency,omitempty"`
	Status   Status `json:"status"`
	Coupon   string `json:"coupon,omitempty"`
	Items    []Item `json:"items,omitempty"`
	// SessionRef is a session reference carried by the source (a signed
	// session cookie value that travelled through a hosted checkout), to be
	// verified before use.
	SessionRef string `json:"-"`
	// ClickIDs are click-ID query parameters the source carried (for example
	// Shopify's landing_site), by parameter name.
	ClickIDs map[string]string `json:"-"`
	// EventID is the provider's own event or delivery ID, for dropping
	// retried webhooks.
	EventID string `json:"event_id,omitempty"`
	// OccurredAt is when the order happened, if the source says.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	// OriginalID is the ID (or an alias) of the sale that a rebill, refund
	// or chargeback belongs to, when the platform gives the later
	// transaction an ID of its own (a subscription renewal's invoice): the
	// networks credited with that sale are credited with this one.
	OriginalID string `json:"original_id,omitempty"`
	// Customer holds the customer's identifiers, normalised and SHA-256
	// hashed when the order is read (never kept in clear), for platforms
	// that match conversions on them.
	Customer *Customer `json:"customer,omitempty"`
	// Values are per-offer values that the rule, webhook or endpoint that
	// saw the order sets for the networks' templates (an offer ID, a goal
	// name, a payout), by name.
	Values map[string]string `json:"values,omitempty"`
	// Invalid lists values the source gave but that could not be read (an
	// amount that does not parse or is out of range, a currency that is
	// not a code): the order is recorded and nothing is sent (see Check).
	Invalid []string `json:"invalid,omitempty"`
	// Problems lists what could not be read (an unparseable amount, a
	// missing currency); the order is kept and the problems logged.
	Problems []string `json:"problems,omitempty"`
}
