package postback

import (
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Everflow: advertiser → Everflow server postback (wire-formats.md §2).
//
//	GET https://<tracking domain>/?nid=<nid>&transaction_id={click_id}&amount={amount}
//	    &adv1={order_id}&order_id={order_id}[&coupon_code=…][&event_id=…][&verification_token=…]
//
// Every customer has an own tracking domain, so url or domain is required.
// Params: nid (required); verification_token (if the account uses tokens);
// event_id (Everflow event ID sent with every conversion) and
// event_id_<event> (per order event, e.g. event_id_lead=3), which also
// widen the default event filter to the events named. Status updates are not
// part of Everflow's postback, so refunds and rejections are not supported.
func init() { register("everflow", everflowParams, newEverflow) }

var everflowParams = paramSpec{
	required: []string{"nid"},
	optional: []string{"verification_token", "event_id"},
	prefixes: []string{"event_id_"},
	secrets:  []string{"verification_token"},
}

func newEverflow(cfg Config) (Destination, error) {
	const name = "everflow"
	if err := checkParams(name, cfg, everflowParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	eventIDs := map[string]string{}
	events := "purchase"
	for k, v := range p {
		if e, ok := strings.CutPrefix(k, "event_id_"); ok {
			eventIDs[e] = v
			events += "," + e
		}
	}
	fields := []field{
		{"nid", lit(p["nid"])},
		{"transaction_id", tok("click_id")},
		{"amount", optTok("amount")},
		// adv1 carries the order ID too: it is the column Everflow reports
		// show by default, and the design's sample template uses it.
		{"adv1", optTok("order_id")},
		{"order_id", optTok("order_id")},
		{"coupon_code", optTok("coupon")},
		{"event_id", func(c *record.Postback) (string, bool) {
			if id, ok := eventIDs[c.Order.Event]; ok {
				return id, true
			}
			return p["event_id"], p["event_id"] != ""
		}},
		{"verification_token", optLit(p["verification_token"])},
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: "/", reserved: fieldKeys(fields)})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, events, order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}, nil
}
