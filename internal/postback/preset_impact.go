package postback

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// impact.com: Conversions API (wire-formats.md §2).
//
//	POST https://api.impact.com/Advertisers/<account_sid>/Conversions
//	Authorization: Basic base64(<account_sid>:<auth_token>)
//	Content-Type: application/x-www-form-urlencoded
//
//	CampaignId=…&EventTypeId=…|EventTypeCode=…&EventDate=<ISO 8601>&OrderId={order_id}
//	&ClickId={click_id}&CurrencyCode={currency}[&OrderPromoCode={coupon}][&IpAddress={ip}]
//	&ItemSku1=…&ItemName1=…&ItemQuantity1=…&ItemPrice1=…   (one set per item)
//
// Params: account_sid, auth_token, campaign_id, and event_type_id or
// event_type_code. Item fields follow impact.com's submitted example; an
// order without items goes as ItemSubTotal1=<total>&ItemQuantity1=1
// (impact's order-level page names an ItemSubtotal field whose total is
// used instead of price × quantity; the "ItemSubTotal" casing is from
// integrators' code — UNVERIFIED). Impact says any 5xx should be retried,
// which ClassifyStatus does. Reversals go through impact's Actions API, so
// refunds and rejections are not supported. Default events: purchase.
func init() { register("impact", impactParams, newImpact) }

var impactParams = paramSpec{
	required: []string{"account_sid", "auth_token", "campaign_id"},
	optional: []string{"event_type_id", "event_type_code"},
	secrets:  []string{"auth_token"},
}

func newImpact(cfg Config) (Destination, error) {
	const name = "impact"
	if err := checkParams(name, cfg, impactParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	if (p["event_type_id"] == "") == (p["event_type_code"] == "") {
		return nil, errorf("preset impact needs exactly one of event_type_id and event_type_code")
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def:  "https://api.impact.com",
		path: "/Advertisers/" + url.PathEscape(p["account_sid"]) + "/Conversions",
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	fields := []field{
		{"CampaignId", lit(p["campaign_id"])},
		{"EventTypeId", optLit(p["event_type_id"])},
		{"EventTypeCode", optLit(p["event_type_code"])},
		{"EventDate", func(c *record.Postback) (string, bool) {
			return eventTime(c).UTC().Format(time.RFC3339), true
		}},
		{"OrderId", tok("order_id")},
		{"ClickId", tok("click_id")},
		{"CurrencyCode", optTok("currency")},
		{"OrderPromoCode", optTok("coupon")},
		{"IpAddress", optTok("ip")},
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(p["account_sid"]+":"+p["auth_token"]))
	return &impactPreset{ep: ep, fields: fields, auth: auth, sup: sup}, nil
}

type impactPreset struct {
	ep     endpoint
	fields []field
	auth   string
	sup    support
}

// Render implements Destination.
func (d *impactPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	fields := append(make([]field, 0, len(d.fields)+4*len(c.Order.Items)+2), d.fields...)
	cur := c.Order.Currency
	for i, it := range c.Order.Items {
		idx := strconv.Itoa(i + 1)
		qty := it.Quantity
		if qty <= 0 {
			qty = 1
		}
		fields = append(fields,
			field{"ItemSku" + idx, optLit(it.ID)},
			field{"ItemName" + idx, optLit(it.Name)},
			field{"ItemQuantity" + idx, lit(strconv.FormatInt(qty, 10))},
			field{"ItemPrice" + idx, lit(it.Price.ForCurrency(cur))},
		)
	}
	if len(c.Order.Items) == 0 && c.Order.HasAmount {
		fields = append(fields,
			field{"ItemSubTotal1", lit(c.Order.Amount.ForCurrency(cur))},
			field{"ItemQuantity1", lit("1")},
		)
	}
	var b strings.Builder
	appendFields(&b, 0, fields, c)
	body := b.String()
	h := http.Header{}
	h.Set("Authorization", d.auth)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	return record.Request{Method: http.MethodPost, URL: u, Header: h, Body: body}, nil
}

// Classify implements Destination.
func (d *impactPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o != Delivered {
		return o, snippet(body)
	}
	return o, ""
}

// Supports implements Destination.
func (d *impactPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}
