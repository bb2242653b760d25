package postback

import (
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Awin: direct server-to-server conversion (wire-formats.md §2).
//
//	GET https://www.awin1.com/sread.php?tt=ss&tv=2&merchant=<merchant>&amount=<total>&ch=aw
//	    &parts=<commission group>:<total>[&vc={coupon}]&cr={currency}&ref={order_id}
//	    &testmode=0|1&cks={click_id}
//
// Params: merchant (the Awin advertiser ID, required), commission_group
// (default DEFAULT). The amount is "." decimal with no thousands separator,
// as Awin requires; an order with no amount goes as 0. ch is always aw: the
// preset only fires when attribution credited Awin's click. testmode follows
// Conversion.Test. Awin's S2S takes no amendments, so refunds and
// rejections are not supported. Default events: purchase.
func init() { register("awin", awinParams, newAwin) }

var awinParams = paramSpec{
	required: []string{"merchant"},
	optional: []string{"commission_group"},
}

func newAwin(cfg Config) (Destination, error) {
	const name = "awin"
	if err := checkParams(name, cfg, awinParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	group := p["commission_group"]
	if group == "" {
		group = "DEFAULT"
	}
	fields := []field{
		{"tt", lit("ss")},
		{"tv", lit("2")},
		{"merchant", lit(p["merchant"])},
		{"amount", func(c *record.Postback) (string, bool) { return amountOrZero(c), true }},
		{"ch", lit("aw")},
		{"parts", func(c *record.Postback) (string, bool) { return group + ":" + amountOrZero(c), true }},
		{"vc", optTok("coupon")},
		{"cr", tok("currency")},
		{"ref", tok("order_id")},
		{"testmode", tok("test")},
		{"cks", tok("click_id")},
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def: "https://www.awin1.com", path: "/sread.php", reserved: fieldKeys(fields),
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}, nil
}
