package postback

import (
	"bytes"
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// TUNE (HasOffers): advertiser server postback (wire-formats.md §2).
//
//	GET https://<network>.go2cloud.org/aff_lsr?[offer_id=…&]transaction_id={click_id}
//	    &amount={amount}&adv_sub={order_id}[&security_token=…]
//
// The network's domain is per customer, so url or domain is required.
// Params: offer_id (optional; the global postback goes without it),
// security_token (the Advertiser Security Token; the parameter name is
// not in the reference — UNVERIFIED). TUNE answers 200 even when it
// refuses a conversion, so a 2xx counts only with "success=true" in the
// body. Status updates are not supported.
func init() { register("tune", tuneParams, newTune) }

var tuneParams = paramSpec{optional: []string{"offer_id", "security_token"}}

func newTune(cfg Config) (Destination, error) {
	const name = "tune"
	if err := checkParams(name, cfg, tuneParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	fields := []field{
		{"offer_id", optLit(p["offer_id"])},
		{"transaction_id", tok("click_id")},
		// "amount" is the sale amount name used by integrators ([3P]).
		{"amount", optTok("amount")},
		{"adv_sub", optTok("order_id")},
		{"security_token", optLit(p["security_token"])},
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: "/aff_lsr", reserved: fieldKeys(fields)})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup, classify: classifyTune}, nil
}

// classifyTune reads TUNE's answer: "success=true;" or
// "success=false; err_msg=…;", both with HTTP 200.
func classifyTune(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o != Delivered {
		return o, snippet(body)
	}
	if bytes.Contains(body, []byte("success=true")) {
		return Delivered, ""
	}
	if bytes.Contains(body, []byte("success=false")) {
		return Reject, snippet(body)
	}
	return Reject, "answer has no success=true: " + snippet(body)
}
