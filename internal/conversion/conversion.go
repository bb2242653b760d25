// Package conversion turns an order into credited conversions: it asks
// attribution which of the visitor's touchpoints earn it, renders each
// credited network's postback, and queues them in the outbox in one
// transaction.
package conversion

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// now is the clock; tests replace it.
var now = time.Now

// Network is a configured network as the tracker needs it.
type Network struct {
	Attribution attribution.Network
	Destination postback.Destination
	// MaxAge bounds a delivery's retries (default 72h).
	MaxAge time.Duration
}

// Tracker records conversions.
type Tracker struct {
	Outbox *outbox.Outbox
	// Sessions finds the session a confirmation page linked to an order.
	Sessions *capture.Sessions
	Networks map[string]Network
	Policy   attribution.Policy
	// OrderTTL is how long the order index is kept, for joining status
	// updates (refunds) to the original credit; default 400 days.
	OrderTTL time.Duration
}

// Result says what a call did.
type Result struct {
	// Conversion is the stored record, nil when nothing new was recorded.
	Conversion *outbox.Conversion
	Credits    []attribution.Credit
	Queued     int
	Duplicates int
	// Skipped explains credited networks that were not sent anything.
	Skipped []string
	// SeenEvent is true for a webhook event processed before.
	SeenEvent bool
}

// orderRecord indexes an order by ID: which session it belongs to and which
// networks were credited, so a refund weeks later reaches the same networks
// with the same click IDs even after the touchpoints expired.
type orderRecord struct {
	SessionID string               `json:"session_id,omitempty"`
	Credits   []attribution.Credit `json:"credits,omitempty"`
	Order     order.Order          `json:"order"`
}

func orderKey(id string) []byte { return store.Key(store.PrefixOrder, id) }

// Convert credits an order to the session's touchpoints and queues the
// postbacks. sess may be nil when the order has no known visitor, in which
// case only a status update for an already credited order can produce
// postbacks. once, if not nil, marks the whole call (a webhook event ID).
func (t *Tracker) Convert(o order.Order, sess *capture.Session, gaClientID string, once []byte) (Result, error) {
	if o.ID == "" {
		return Result{}, errors.New("order has no ID")
	}
	at := now()
	var res Result
	var prior *orderRecord
	err := t.Outbox.Store().View(func(txn store.Txn) error {
		for _, id := range append([]string{o.ID}, o.Aliases...) {
			v, err := txn.Get(orderKey(id))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			prior = new(orderRecord)
			return json.Unmarshal(v, prior)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("reading order index: %w", err)
	}
	if prior != nil && prior.Order.ID != "" && prior.Order.ID != o.ID {
		// The platform named the order by an alias (a Stripe refund names the
		// payment intent): report it under the ID the networks were given.
		o.ID = prior.Order.ID
	}
	if sess == nil && prior != nil && prior.SessionID != "" && t.Sessions != nil {
		// A confirmation page linked this order to a visitor before the
		// platform's webhook arrived.
		if s, err := t.Sessions.Get(prior.SessionID); err == nil {
			sess = s
		}
	}
	update := o.Status == order.StatusRefunded || o.Status == order.StatusRejected
	switch {
	case update && prior != nil && len(prior.Credits) > 0:
		// Status updates go to the networks credited with the sale.
		res.Credits = prior.Credits
		if !o.HasAmount && prior.Order.HasAmount {
			o.Amount, o.HasAmount, o.Currency = prior.Order.Amount, true, prior.Order.Currency
		}
	case sess != nil:
		attrNets := make(map[string]attribution.Network, len(t.Networks))
		for name, n := range t.Networks {
			attrNets[name] = n.Attribution
		}
		res.Credits = attribution.Decide(t.Policy, attrNets, sess.Touchpoints, at)
	}
	sessionID := ""
	if sess != nil {
		sessionID = sess.ID
		if gaClientID == "" {
			gaClientID = sess.GAClientID
		}
	}
	conv := outbox.Conversion{ID: outbox.NewID(), Order: o, SessionID: sessionID, Credits: res.Credits}
	var deliveries []outbox.Delivery
	for _, c := range res.Credits {
		n, ok := t.Networks[c.Network]
		if !ok {
			res.Skipped = append(res.Skipped, c.Network+": no longer configured")
			continue
		}
		if !n.Destination.Supports(o.Event, o.Status) {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: does not take %s/%s", c.Network, o.Event, o.Status))
			continue
		}
		pc := postback.Conversion{ID: conv.ID, Network: c.Network, Order: o, Touchpoint: c.Touchpoint, GAClientID: gaClientID, Time: at}
		req, err := n.Destination.Render(&pc)
		if err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: rendering postback: %v", c.Network, err))
			continue
		}
		deliveries = append(deliveries, outbox.Delivery{
			ID: outbox.NewID(), Network: c.Network, Event: o.Event, OrderID: o.ID, Status: o.Status,
			Key: attribution.IdempotencyKey(c.Network, &o), Request: req, MaxAge: n.MaxAge,
		})
	}
	index := func(txn store.Txn) error {
		if update && prior != nil {
			return nil // keep the original credit
		}
		rec := orderRecord{SessionID: sessionID, Credits: res.Credits, Order: o}
		if prior != nil && len(prior.Credits) > 0 && len(rec.Credits) == 0 {
			rec.Credits = prior.Credits
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding order index: %w", err)
		}
		ttl := t.OrderTTL
		if ttl <= 0 {
			ttl = outbox.DefaultIdempotencyTTL
		}
		for _, id := range append([]string{o.ID}, o.Aliases...) {
			if err := txn.Set(orderKey(id), v, ttl); err != nil {
				return err
			}
		}
		return nil
	}
	rr, err := t.Outbox.Record(conv, deliveries, once, index)
	if err != nil {
		return res, err
	}
	res.Conversion, res.Queued, res.Duplicates, res.SeenEvent = rr.Conversion, len(rr.Queued), len(rr.Duplicates), rr.SeenEvent
	return res, nil
}

// Link ties an order ID to a visitor's session, for a confirmation page that
// knows the order but not its amount or status (a hosted checkout's return
// page). If the platform's webhook for the order came first, its order is
// credited to the session now; otherwise the webhook, when it comes, finds
// the session here.
func (t *Tracker) Link(orderID string, sess *capture.Session) (Result, error) {
	if orderID == "" || sess == nil {
		return Result{}, errors.New("link needs an order ID and a session")
	}
	var prior *orderRecord
	key := orderKey(orderID)
	linked := false
	err := t.Outbox.Store().Update(func(txn store.Txn) error {
		prior, linked = nil, false
		v, err := txn.Get(key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			prior = new(orderRecord)
			if err := json.Unmarshal(v, prior); err != nil {
				return fmt.Errorf("decoding order index: %w", err)
			}
		}
		if prior != nil && (prior.SessionID != "" || len(prior.Credits) > 0 || prior.Order.Source != "") {
			return nil // already linked, credited, or seen from the platform
		}
		rec := orderRecord{SessionID: sess.ID, Order: order.Order{ID: orderID}}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding order index: %w", err)
		}
		ttl := t.OrderTTL
		if ttl <= 0 {
			ttl = outbox.DefaultIdempotencyTTL
		}
		linked = true
		return txn.Set(key, b, ttl)
	})
	if err != nil || linked {
		return Result{}, err
	}
	if prior != nil && prior.Order.Source != "" && len(prior.Credits) == 0 {
		return t.Convert(prior.Order, sess, "", nil)
	}
	return Result{}, nil
}
