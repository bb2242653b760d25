package postback

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// CJ Affiliate: server-to-server order (wire-formats.md §2).
//
//	GET https://www.emjcd.com/u?CID=<cid>&TYPE=<type>&METHOD=S2S&CJEVENT={click_id}
//	    &eventTime=<ISO 8601>&OID={order_id}&CURRENCY={currency}[&COUPON={coupon}]
//	    &ITEM1=…&AMT1=…&QTY1=…  (one triple per order item)
//
// Params: cid (enterprise ID) and type (action ID), both required. With
// items, each goes as ITEMn/AMTn/QTYn (AMTn is the unit price). An order
// without items goes with AMOUNT=<total>: AMOUNT is not in the reference's
// CJ template (only item fields are); it is listed among CJ's order fields
// by a tag vendor ([3P], UNVERIFIED). eventTime is the order time if known,
// else the detection time, in UTC. CJ deduplicates on OID. Restatements go
// through CJ's API, so refunds and rejections are not supported. Default
// events: purchase.
func init() { register("cj", cjParams, newCJ) }

var cjParams = paramSpec{required: []string{"cid", "type"}}

func newCJ(cfg Config) (Destination, error) {
	const name = "cj"
	if err := checkParams(name, cfg, cjParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	fields := []field{
		{"CID", lit(p["cid"])},
		{"TYPE", lit(p["type"])},
		{"METHOD", lit("S2S")},
		{"CJEVENT", tok("click_id")},
		{"eventTime", func(c *record.Postback) (string, bool) {
			return eventTime(c).UTC().Format(time.RFC3339), true
		}},
		{"OID", tok("order_id")},
		{"CURRENCY", optTok("currency")},
		{"COUPON", optTok("coupon")},
		{"AMOUNT", func(c *record.Postback) (string, bool) {
			if len(c.Order.Items) > 0 || !c.Order.HasAmount {
				return "", false
			}
			return c.Order.Amount.ForCurrency(c.Order.Currency), true
		}},
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def: "https://www.emjcd.com", path: "/u",
		reserved: append(fieldKeys(fields), "ITEM1", "AMT1", "QTY1"),
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &cjPreset{queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}}, nil
}

// cjPreset adds the item-indexed fields, whose number varies per order.
type cjPreset struct{ queryPreset }

// Render implements Destination.
func (d *cjPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	fields := d.fields
	if n := len(c.Order.Items); n > 0 {
		fields = append(make([]field, 0, len(d.fields)+3*n), d.fields...)
		for i, it := range c.Order.Items {
			idx := strconv.Itoa(i + 1)
			qty := it.Quantity
			if qty <= 0 {
				qty = 1
			}
			fields = append(fields,
				field{"ITEM" + idx, lit(it.ID)},
				field{"AMT" + idx, lit(it.Price.ForCurrency(c.Order.Currency))},
				field{"QTY" + idx, lit(strconv.FormatInt(qty, 10))},
			)
		}
	}
	u, err := d.ep.render(c, fields)
	if err != nil {
		return record.Request{}, err
	}
	return record.Request{Method: d.method, URL: u, Header: http.Header{}}, nil
}
