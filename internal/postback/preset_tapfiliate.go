package postback

import (
	"context"
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Tapfiliate server-to-server postback, version 1.7 (tapfiliate.com/docs/
// integrations/s2s-postback).
//
//	POST https://api.tapfiliate.com/1.7/pb/con/c/
//	X-Api-Key: <api_key>
//	Content-Type: application/json
//
//	{"external_id":<order ID>,"amount":"<decimal>","currency":…,"customer_id":<visitor>,
//	 "referral_code"|"click_id":<click>,"commission_type":…}
//
// The click is sent as referral_code when it came as an affiliate link's
// ref parameter (ref, refc, referral_code: the affiliate's code) and as
// click_id otherwise (a click ID from Tapfiliate's own tracking).
// customer_id is a pseudonymous visitor ID made from the credited click,
// the same for a sale and its rebills: with lifetime commissions on,
// Tapfiliate credits every later conversion of that customer to the same
// affiliate, which is how it pays recurring commissions. external_id is
// the order ID; Tapfiliate wants it unique per conversion, which a rebill's
// own order ID is.
//
// Params: api_key (required), commission_type (optional: a commission type
// of the program). Events: purchase and rebill. Refunds are not sent: the
// postback API documented for creating conversions has no refund call, and
// the REST API disapproves a conversion by Tapfiliate's own ID, which only
// the create call's answer knows.
func init() { register("tapfiliate", tapfiliateParams, newTapfiliate) }

var tapfiliateParams = paramSpec{
	required: []string{"api_key"},
	optional: []string{"commission_type"},
	secrets:  []string{"api_key"},
}

func newTapfiliate(cfg Config) (Destination, error) {
	const name = "tapfiliate"
	if err := checkParams(name, cfg, tapfiliateParams); err != nil {
		return nil, err
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{def: "https://api.tapfiliate.com", path: "/1.7/pb/con/c/"})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase,"+order.EventRebill, order.StatusApproved)
	if err != nil {
		return nil, err
	}
	return &tapfiliatePreset{ep: ep, key: cfg.Params["api_key"], commissionType: cfg.Params["commission_type"], sup: sup}, nil
}

type tapfiliatePreset struct {
	ep             endpoint
	key            string
	commissionType string
	sup            support
}

type tapfiliateConversion struct {
	ExternalID     string `json:"external_id"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency,omitempty"`
	CustomerID     string `json:"customer_id"`
	ReferralCode   string `json:"referral_code,omitempty"`
	ClickID        string `json:"click_id,omitempty"`
	CommissionType string `json:"commission_type,omitempty"`
}

// tapfiliateReferralParams carry an affiliate's referral code.
var tapfiliateReferralParams = map[string]bool{"ref": true, "refc": true, "referral_code": true}

// Render implements Destination.
func (d *tapfiliatePreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	if _, err := orderAmountMinor("tapfiliate", c); err != nil {
		return record.Request{}, err
	}
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	o, tp := &c.Order, &c.Touchpoint
	conv := tapfiliateConversion{
		ExternalID: o.ID, Amount: o.Amount.ForCurrency(o.Currency), Currency: o.Currency,
		CustomerID: visitorID(c), CommissionType: d.commissionType,
	}
	if tapfiliateReferralParams[tp.Param] {
		conv.ReferralCode = tp.ClickID
	} else {
		conv.ClickID = tp.ClickID
	}
	return postJSON(u, conv, http.Header{"X-Api-Key": {d.key}})
}

// Classify implements Destination.
func (d *tapfiliatePreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	return classifyAPI(status, body)
}

// Supports implements Destination.
func (d *tapfiliatePreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*tapfiliatePreset)(nil)
