// Package conversion turns an order into credited conversions: it joins the
// order to its visitor (the session it was seen with, or that a
// confirmation page or an earlier record tied it to), asks attribution
// which touchpoints earn it, and records the conversion with one delivery
// per credited network in one ledger write, with their idempotency
// markers. A page and a webhook for one order, in either order and on any
// node, produce one postback per network.
package conversion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Network is a configured network as the tracker needs it.
type Network struct {
	Attribution attribution.Network
	Destination postback.Destination
	// MaxAge bounds a delivery's retries (0: DefaultMaxAge).
	MaxAge time.Duration
	// RebillFor is how long after the first sale its rebills are credited
	// to this network; negative or zero: for the subscription's lifetime.
	RebillFor time.Duration
}

// Retention says how long the ledger keeps what it records.
type Retention struct {
	// Conversions are kept this long; default DefaultConversionRetention.
	Conversions time.Duration
	// Orders keeps the order index (for refunds and late joins) and the
	// idempotency markers; default DefaultOrderRetention.
	Orders time.Duration
}

// Defaults.
const (
	DefaultConversionRetention = 90 * 24 * time.Hour
	// DefaultOrderRetention keeps the order index and idempotency
	// markers, so a thank-you page revisited months later fires nothing
	// and a refund a year later still reaches the credited networks.
	DefaultOrderRetention = 400 * 24 * time.Hour
	// DefaultMaxAge is how long a delivery is retried before it is dead.
	DefaultMaxAge = 72 * time.Hour
	// DefaultSessionDailyLimit bounds the orders a confirmation page can
	// record for one session in 24 hours. A shopper places one or two
	// orders a day; a visitor who fills a query-placeholder rule with made
	// up order IDs is stopped at a handful.
	DefaultSessionDailyLimit = 5
)

// Tracker records conversions.
type Tracker struct {
	Store    store.Store
	Networks map[string]Network
	Policy   attribution.Policy
	// Retention of conversions, orders and markers.
	Retention Retention
	// SessionDailyLimit bounds the orders from confirmation pages
	// (source "page") one session can have recorded in 24 hours; further
	// ones are recorded as held. 0: DefaultSessionDailyLimit; negative: no
	// limit.
	SessionDailyLimit int
	// Queued, if set, is told which networks have new deliveries.
	Queued func(networks []string)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Result says what a call did.
type Result struct {
	// Conversion is the stored record, nil when nothing new was recorded.
	Conversion *record.Conversion
	Credits    []record.Credit
	Queued     int
	Duplicates int
	// QueuedNetworks and DuplicateNetworks name the networks whose
	// postbacks were queued, and those left out because the same network,
	// event and order was queued before.
	QueuedNetworks    []string
	DuplicateNetworks []string
	// Skipped explains credited networks that were not sent anything.
	Skipped []string
	// Held says why nothing at all was sent (invalid values, a session
	// over its daily limit).
	Held string
	// SeenEvent is true for a webhook event processed before.
	SeenEvent bool
	// Linked is true when Link tied the order to the session.
	Linked bool
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tracker) retention() Retention {
	r := t.Retention
	if r.Conversions <= 0 {
		r.Conversions = DefaultConversionRetention
	}
	if r.Orders <= 0 {
		r.Orders = DefaultOrderRetention
	}
	return r
}

// maxConflicts bounds the retries of a recording that lost a race for its
// order entry to another writer (a page and a webhook at once).
const maxConflicts = 10

// Convert records an order: sess is the visitor's session when the source
// knows it (nil otherwise), gaClientID the Google Analytics client ID it
// carried, eventKey the webhook's provider/event ID ("" for none). A status
// update (refund, rejection) goes to the networks credited with the sale, a
// rebill to those credited with the subscription's first sale.
func (t *Tracker) Convert(ctx context.Context, o order.Order, sess *record.Session, gaClientID, eventKey string) (Result, error) {
	if o.ID == "" {
		return Result{}, errors.New("order has no ID")
	}
	held := strings.Join(o.Check(), "; ")
	if len(o.ID) > order.MaxIDLength {
		o.ID = o.ID[:order.MaxIDLength]
	}
	for attempt := 0; ; attempt++ {
		res, err := t.convert(ctx, o, sess, gaClientID, eventKey, held)
		if errors.Is(err, store.ErrConflict) && attempt < maxConflicts {
			continue
		}
		return res, err
	}
}

func (t *Tracker) convert(ctx context.Context, o order.Order, sess *record.Session, gaClientID, eventKey, held string) (Result, error) {
	now := t.now()
	ret := t.retention()
	keys := orderKeys(o)
	prior, err := t.Store.FindOrder(ctx, keys, now)
	if err != nil {
		return Result{}, fmt.Errorf("reading the order index: %w", err)
	}
	if prior.Version > 0 && prior.OrderID != "" && prior.OrderID != o.ID {
		// The platform named the order by an alias (a Stripe refund names
		// the payment intent): report it under the ID the networks know.
		o.ID = prior.OrderID
		keys = orderKeys(o)
	}
	if prior.SessionID != "" && (sess == nil || sess.ID != prior.SessionID) {
		// The order is tied to the visitor a confirmation page saw first;
		// another visitor naming the same order ID cannot take it.
		sess = nil
		if prior.SessionID != record.Erased {
			if s, err := t.Store.Session(ctx, prior.SessionID, now); err == nil {
				sess = s
			} else if !errors.Is(err, store.ErrNotFound) {
				return Result{}, fmt.Errorf("reading the linked session: %w", err)
			}
		}
	}
	if sess != nil && gaClientID == "" {
		gaClientID = sess.GAClientID
	}
	var res Result
	var decision string
	update := o.Status == order.StatusRefunded || o.Status == order.StatusRejected
	switch {
	case update && prior.Version > 0 && len(prior.Credits) > 0:
		res.Credits = prior.Credits
		decision = "status update: told to the networks credited with the sale"
		if !o.HasAmount && prior.Order.HasAmount {
			o.Amount, o.HasAmount, o.Currency = prior.Order.Amount, true, prior.Order.Currency
		}
	case update:
		decision = "status update of an order credited to nobody"
	case o.Event == order.EventRebill:
		res.Credits, decision, err = t.rebillCredits(ctx, o, now)
		if err != nil {
			return Result{}, err
		}
	case sess != nil:
		res.Credits = attribution.Decide(t.Policy, t.attributionNetworks(), sess.Live(now), now)
		decision = fmt.Sprintf("%s over the session's %d live click(s)", policyName(t.Policy), len(sess.Live(now)))
		if len(res.Credits) == 0 {
			decision = "no click of a configured network within its window"
		}
	default:
		decision = "no visitor: the order carried no session reference or known click ID, and no page tied it to one"
	}
	if held == "" && sess != nil && o.Source == "page" && !update {
		if held, err = t.overDailyLimit(ctx, sess.ID, now); err != nil {
			return Result{}, err
		}
	}
	sessionID := ""
	if sess != nil {
		sessionID = sess.ID
	}
	conv := &record.Conversion{ID: record.NewID(now), Order: o, SessionID: sessionID, Credits: res.Credits, Decision: decision,
		Held: held, CreatedAt: now, ExpiresAt: now.Add(ret.Conversions), Skipped: []string{}, Deliveries: []string{}}
	var deliveries []record.Delivery
	if held == "" {
		deliveries, res.Skipped = t.deliveries(o, res.Credits, conv.ID, gaClientID, now)
		conv.Skipped = append(conv.Skipped, res.Skipped...)
	}
	rec := store.Recording{
		EventKey: eventKey, EventUntil: now.Add(ret.Orders),
		Conversion: conv, ConversionKey: conversionKey(&o),
		Deliveries: deliveries, DedupUntil: now.Add(ret.Orders), Now: now,
	}
	if !update || prior.Version == 0 {
		// A status update keeps the entry of the sale it updates.
		entry := &store.OrderEntry{OrderID: o.ID, SessionID: sessionID, Credits: res.Credits, Order: o, ExpiresAt: now.Add(ret.Orders)}
		if len(entry.Credits) == 0 {
			entry.Credits = prior.Credits
		}
		rec.OrderKeys, rec.Prior, rec.Entry = keys, prior.Version, entry
	}
	rr, err := t.Store.Record(ctx, rec)
	if err != nil {
		return Result{}, err
	}
	res.Conversion, res.Queued, res.Duplicates, res.SeenEvent, res.Held = rr.Conversion, len(rr.Queued), len(rr.Duplicates), rr.SeenEvent, held
	for _, d := range deliveries {
		switch {
		case slices.Contains(rr.Queued, d.ID):
			res.QueuedNetworks = append(res.QueuedNetworks, d.Network)
		case slices.Contains(rr.Duplicates, d.Key):
			res.DuplicateNetworks = append(res.DuplicateNetworks, d.Network)
		}
	}
	if len(rr.Queued) > 0 && t.Queued != nil {
		var nets []string
		for _, d := range deliveries {
			if !slices.Contains(nets, d.Network) {
				nets = append(nets, d.Network)
			}
		}
		t.Queued(nets)
	}
	return res, nil
}

// deliveries makes one delivery per credited network that takes the
// order's event and status, and says why the others get none.
func (t *Tracker) deliveries(o order.Order, credits []record.Credit, convID, gaClientID string, now time.Time) ([]record.Delivery, []string) {
	var out []record.Delivery
	var skipped []string
	for _, c := range credits {
		n, ok := t.Networks[c.Network]
		if !ok {
			skipped = append(skipped, c.Network+": no longer configured")
			continue
		}
		if !n.Destination.Supports(o.Event, o.Status) {
			skipped = append(skipped, fmt.Sprintf("%s: does not take %s/%s", c.Network, o.Event, o.Status))
			continue
		}
		maxAge := n.MaxAge
		if maxAge <= 0 {
			maxAge = DefaultMaxAge
		}
		out = append(out, record.Delivery{
			ID: record.NewID(now), Network: c.Network, Event: o.Event, OrderID: o.ID, Status: o.Status,
			Key: attribution.IdempotencyKey(c.Network, &o), MaxAge: maxAge, CreatedAt: now,
			Postback: record.Postback{ConversionID: convID, Network: c.Network, Order: o, Touchpoint: c.Touchpoint, GAClientID: gaClientID, Time: now},
		})
	}
	return out, skipped
}

// rebillCredits credits a rebill to the networks credited with the
// subscription's first sale, within each network's rebill period.
func (t *Tracker) rebillCredits(ctx context.Context, o order.Order, now time.Time) ([]record.Credit, string, error) {
	if o.OriginalID == "" {
		return nil, "rebill that names no first sale", nil
	}
	first, err := t.Store.FindOrder(ctx, []string{o.OriginalID}, now)
	if err != nil {
		return nil, "", fmt.Errorf("reading the first sale of a rebill: %w", err)
	}
	if first.Version == 0 || len(first.Credits) == 0 {
		return nil, fmt.Sprintf("rebill of %s, a sale credited to nobody", o.OriginalID), nil
	}
	var out []record.Credit
	for _, c := range first.Credits {
		n := t.Networks[c.Network]
		since := first.Order.OccurredAt
		if since.IsZero() {
			since = c.Touchpoint.CapturedAt
		}
		if n.RebillFor > 0 && now.Sub(since) > n.RebillFor {
			continue
		}
		c.Reason = fmt.Sprintf("rebill of %s, credited to this network", first.OrderID)
		out = append(out, c)
	}
	return out, fmt.Sprintf("rebill of %s: the networks credited with the first sale, within their rebill period", first.OrderID), nil
}

// overDailyLimit reports (as a held reason) a session that already has
// its daily share of page conversions.
func (t *Tracker) overDailyLimit(ctx context.Context, sessionID string, now time.Time) (string, error) {
	limit := t.SessionDailyLimit
	if limit == 0 {
		limit = DefaultSessionDailyLimit
	}
	if limit < 0 {
		return "", nil
	}
	n, err := t.Store.SessionConversions(ctx, sessionID, now.Add(-24*time.Hour), now)
	if err != nil {
		return "", fmt.Errorf("counting the session's conversions: %w", err)
	}
	if n >= limit {
		return fmt.Sprintf("the session already has %d page conversions in 24 hours (limit %d)", n, limit), nil
	}
	return "", nil
}

func (t *Tracker) attributionNetworks() map[string]attribution.Network {
	m := make(map[string]attribution.Network, len(t.Networks))
	for name, n := range t.Networks {
		m[name] = n.Attribution
	}
	return m
}

func policyName(p attribution.Policy) string {
	if p == "" {
		return string(attribution.LastClick)
	}
	return string(p)
}

// orderKeys are the keys an order is indexed under: its ID and aliases.
func orderKeys(o order.Order) []string {
	keys := []string{o.ID}
	for _, a := range o.Aliases {
		if a != "" && !slices.Contains(keys, a) {
			keys = append(keys, a)
		}
	}
	return keys
}

// conversionKey identifies what a conversion records, so the same order
// and event (or status update) is recorded once.
func conversionKey(o *order.Order) string {
	ev := o.Event
	if o.Status == order.StatusRefunded || o.Status == order.StatusRejected {
		ev += ":" + string(o.Status)
	}
	return ev + "/" + o.ID
}

// Link ties an order ID seen on a hosted checkout's return page to a
// visitor's session, for a page that knows the order but not its amount
// or status. If the platform's webhook for the order came first, its order
// is credited to the session now; otherwise the webhook, when it comes,
// finds the session here. An order tied to a session is never tied to
// another.
func (t *Tracker) Link(ctx context.Context, orderID string, sess *record.Session) (Result, error) {
	if orderID == "" || sess == nil {
		return Result{}, errors.New("link needs an order ID and a session")
	}
	if len(orderID) > order.MaxIDLength {
		return Result{}, fmt.Errorf("order ID of %d bytes, over %d", len(orderID), order.MaxIDLength)
	}
	for attempt := 0; ; attempt++ {
		now := t.now()
		prior, err := t.Store.FindOrder(ctx, []string{orderID}, now)
		if err != nil {
			return Result{}, fmt.Errorf("reading the order index: %w", err)
		}
		if prior.SessionID != "" {
			return Result{}, nil // already tied to a visitor
		}
		if prior.Version > 0 && prior.Order.Source != "" {
			// The platform reported the order before the visitor returned.
			return t.Convert(ctx, prior.Order, sess, "", "")
		}
		entry := &store.OrderEntry{OrderID: orderID, SessionID: sess.ID, ExpiresAt: now.Add(t.retention().Orders)}
		_, err = t.Store.Record(ctx, store.Recording{OrderKeys: []string{orderID}, Prior: prior.Version, Entry: entry, Now: now})
		if errors.Is(err, store.ErrConflict) && attempt < maxConflicts {
			continue
		}
		if err != nil {
			return Result{}, err
		}
		return Result{Linked: true}, nil
	}
}
