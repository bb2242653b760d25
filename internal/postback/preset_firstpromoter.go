package postback

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// FirstPromoter Tracking API v2 (docs.firstpromoter.com, "Tracking sales
// and commissions", "Tracking refunds", cancellation).
//
//	POST https://api.firstpromoter.com/api/v2/track/sale
//	POST https://api.firstpromoter.com/api/v2/track/refund
//	POST https://api.firstpromoter.com/api/v2/track/cancellation
//	Authorization: Bearer <api_key>
//	Account-ID: <account_id>
//	Content-Type: application/json
//
//	sale:         {"uid":<visitor>,"event_id":<order ID>,"amount":<minor>,"currency":…,"ref_id"|"tid":<click>}
//	refund:       {"uid":<visitor>,"event_id":"<order ID>:refund","amount":"<minor>","currency":…,"sale_event_id":<order ID>}
//	cancellation: {"uid":<visitor>}
//
// FirstPromoter finds the referred customer (its lead) by uid; the first
// sale creates the lead from the click: ref_id when the click came as a
// referral link's parameter (fpr, via, ref…), tid when it is the tracking
// ID of FirstPromoter's _fprom_tid cookie. uid is a pseudonymous visitor ID
// made from the credited click, the same for the sale and its rebills,
// refunds and cancellation; FirstPromoter gets no e-mail. A rebill is a sale
// of its own (its own order ID as event_id) for the same lead, which is how
// FirstPromoter pays recurring commissions. A refund names the sale it
// reverses (the original order's ID). A cancellation
// (order.EventCancel) marks the customer cancelled.
//
// Answers: 404 (no such referral, or the promoter is banned) is a Reject
// with FirstPromoter's message; 409 (the event ID is already recorded) is
// delivered, since a retried sale must not fail. Params: api_key and
// account_id (required). Events: purchase, rebill and cancellation;
// refunds too. Amounts are required.
func init() { register("firstpromoter", firstPromoterParams, newFirstPromoter) }

var firstPromoterParams = paramSpec{
	required: []string{"api_key", "account_id"},
	secrets:  []string{"api_key"},
}

func newFirstPromoter(cfg Config) (Destination, error) {
	const name = "firstpromoter"
	if err := checkParams(name, cfg, firstPromoterParams); err != nil {
		return nil, err
	}
	d := &firstPromoterPreset{token: cfg.Params["api_key"], account: strings.TrimSpace(cfg.Params["account_id"])}
	for _, e := range []struct {
		ep   *endpoint
		path string
	}{{&d.sale, "/api/v2/track/sale"}, {&d.refund, "/api/v2/track/refund"}, {&d.cancel, "/api/v2/track/cancellation"}} {
		ep, err := resolveEndpoint(name, cfg, baseOptions{def: "https://api.firstpromoter.com", path: e.path})
		if err != nil {
			return nil, err
		}
		*e.ep = ep
	}
	sup, err := newSupport(name, cfg, "purchase,"+order.EventRebill+","+order.EventCancel,
		order.StatusApproved, order.StatusRefunded, order.StatusRejected)
	if err != nil {
		return nil, err
	}
	d.sup = sup
	return d, nil
}

type firstPromoterPreset struct {
	sale, refund, cancel endpoint
	token, account       string
	sup                  support
}

type firstPromoterSale struct {
	UID      string `json:"uid"`
	EventID  string `json:"event_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency,omitempty"`
	RefID    string `json:"ref_id,omitempty"`
	TID      string `json:"tid,omitempty"`
}

type firstPromoterRefund struct {
	UID         string `json:"uid"`
	EventID     string `json:"event_id"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency,omitempty"`
	SaleEventID string `json:"sale_event_id"`
}

type firstPromoterCancellation struct {
	UID string `json:"uid"`
}

// firstPromoterTrackingParams are the click parameters that carry
// FirstPromoter's visitor tracking ID rather than a referral ID.
var firstPromoterTrackingParams = map[string]bool{"_fprom_tid": true, "fprom_tid": true, "tid": true}

// Render implements Destination.
func (d *firstPromoterPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	o, tp := &c.Order, &c.Touchpoint
	h := http.Header{"Authorization": {"Bearer " + d.token}, "Account-Id": {d.account}}
	uid := visitorID(c)
	switch {
	case o.Event == order.EventCancel:
		u, err := d.cancel.render(c, nil)
		if err != nil {
			return record.Request{}, err
		}
		return postJSON(u, firstPromoterCancellation{UID: uid}, h)
	case refundLike(o.Event, o.Status):
		amount, err := orderAmountMinor("firstpromoter", c)
		if err != nil {
			return record.Request{}, err
		}
		sale := o.ID
		if o.Event == "refund" && o.OriginalID != "" {
			sale = o.OriginalID
		}
		u, err := d.refund.render(c, nil)
		if err != nil {
			return record.Request{}, err
		}
		return postJSON(u, firstPromoterRefund{
			UID: uid, EventID: o.ID + ":refund", Amount: strconv.FormatInt(amount, 10), Currency: o.Currency, SaleEventID: sale,
		}, h)
	}
	amount, err := orderAmountMinor("firstpromoter", c)
	if err != nil {
		return record.Request{}, err
	}
	body := firstPromoterSale{UID: uid, EventID: o.ID, Amount: amount, Currency: o.Currency}
	if firstPromoterTrackingParams[tp.Param] {
		body.TID = tp.ClickID
	} else {
		body.RefID = tp.ClickID
	}
	u, err := d.sale.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	return postJSON(u, body, h)
}

// Classify implements Destination.
func (d *firstPromoterPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	switch status {
	case http.StatusConflict:
		return Delivered, "already recorded: " + messageReason(body)
	case http.StatusNotFound:
		return Reject, "not a referral of this program: " + messageReason(body)
	}
	return classifyAPI(status, body)
}

// Supports implements Destination.
func (d *firstPromoterPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*firstPromoterPreset)(nil)
