package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Matomo HTTP Tracking API (developer.matomo.org/api-reference/tracking-api).
//
//	GET https://<matomo>/matomo.php?idsite=…&rec=1&apiv=1&send_image=0&_id=<16 hex>&url=…&ua=…
//	    &idgoal=0&ec_id=<order ID>&revenue=<decimal>&ec_items=[[sku,name,"",price,qty],…]
//	    &cdt=<unix s>&cip=<IP>&token_auth=…
//
// A purchase or rebill is an ecommerce order (idgoal=0, ec_id, revenue,
// ec_items); another event is a goal conversion when a goal_<event> param
// names its goal ID, and is not reported otherwise. _id is a pseudonymous
// visitor ID (16 hex digits) made from the credited click. Matomo needs
// token_auth to take the visitor's IP (cip) and a time more than 24 hours
// back (cdt): without it the IP is left out and an older conversion is
// refused at send time. Revenue is in the site's currency, which Matomo
// does not take per request: with the currency param set, an order in
// another currency is refused rather than summed as if it were the same
// money. There is no default host: url or domain names the Matomo. No test
// mode. Approved and pending orders.
func init() { register("matomo", matomoParams, newMatomo) }

var matomoParams = paramSpec{
	required: []string{"site_id"},
	optional: []string{"token_auth", "currency"},
	prefixes: []string{"goal_"},
	secrets:  []string{"token_auth"},
}

// matomoUntrustedAge is how far back Matomo takes a time without token_auth.
const matomoUntrustedAge = 24 * time.Hour

func newMatomo(cfg Config) (Destination, error) {
	const name = "matomo"
	if err := checkParams(name, cfg, matomoParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	site := strings.TrimSpace(p["site_id"])
	if _, err := strconv.ParseUint(site, 10, 32); err != nil {
		return nil, errorf("preset matomo: site_id %q: want the numeric ID", site)
	}
	cur := ""
	if p["currency"] != "" {
		if cur = order.NormalizeCurrency(p["currency"]); cur == "" {
			return nil, errorf("preset matomo: currency %q: want an ISO 4217 code", p["currency"])
		}
	}
	goals := map[string]string{}
	events := []string{"purchase", order.EventRebill}
	for k, v := range p {
		if ev, ok := strings.CutPrefix(k, "goal_"); ok {
			if _, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err != nil || v == "0" {
				return nil, errorf("preset matomo: %s %q: want a goal ID", k, v)
			}
			goals[ev] = strings.TrimSpace(v)
			events = append(events, ev)
		}
	}
	d := &matomoPreset{site: site, token: p["token_auth"], currency: cur, goals: goals, now: clock(cfg)}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: "/matomo.php", reserved: matomoKeys})
	if err != nil {
		return nil, err
	}
	d.ep = ep
	if d.sup, err = newSupport(name, cfg, strings.Join(events, ","), order.StatusApproved, order.StatusPending); err != nil {
		return nil, err
	}
	return d, nil
}

// matomoKeys are the query parameters the preset sets.
var matomoKeys = []string{"idsite", "rec", "apiv", "send_image", "_id", "url", "ua", "idgoal", "ec_id",
	"revenue", "ec_items", "cdt", "cip", "token_auth", "rand"}

type matomoPreset struct {
	ep       endpoint
	site     string
	token    string
	currency string
	goals    map[string]string
	sup      support
	now      func() time.Time
}

// Render implements Destination.
func (d *matomoPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	tp, o := &c.Touchpoint, &c.Order
	at := eventTime(c)
	if d.token == "" && d.now().Sub(at) > matomoUntrustedAge {
		return record.Request{}, fmt.Errorf("%w: matomo takes a conversion more than 24 hours old only with token_auth; this one happened %s ago",
			ErrRejected, d.now().Sub(at).Round(time.Minute))
	}
	if d.currency != "" && o.HasAmount && o.Currency != "" && o.Currency != d.currency {
		return record.Request{}, fmt.Errorf("%w: matomo sums revenue in the site's currency %s; this order is in %s",
			ErrRejected, d.currency, o.Currency)
	}
	fields := []field{
		{"idsite", lit(d.site)}, {"rec", lit("1")}, {"apiv", lit("1")}, {"send_image", lit("0")},
		{"_id", lit(visitorID(c)[:16])}, {"rand", lit(EventID(c))},
	}
	if isHTTPURL(tp.LandingURL) {
		fields = append(fields, field{"url", lit(tp.LandingURL)})
	}
	fields = append(fields, field{"ua", optLit(tp.UserAgent)})
	if goal, ok := d.goals[o.Event]; ok {
		fields = append(fields, field{"idgoal", lit(goal)})
		if o.HasAmount {
			fields = append(fields, field{"revenue", lit(o.Amount.ForCurrency(o.Currency))})
		}
	} else {
		fields = append(fields, field{"idgoal", lit("0")}, field{"ec_id", lit(o.ID)}, field{"revenue", lit(amountOrZero(c))})
		if items := matomoItems(o); items != "" {
			fields = append(fields, field{"ec_items", lit(items)})
		}
	}
	fields = append(fields, field{"cdt", lit(strconv.FormatInt(at.Unix(), 10))})
	if d.token != "" {
		fields = append(fields, field{"cip", optLit(tp.ClientIP)}, field{"token_auth", lit(d.token)})
	}
	u, err := d.ep.render(c, fields)
	if err != nil {
		return record.Request{}, err
	}
	return record.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}, nil
}

// matomoItems encodes an order's lines as Matomo's ec_items: a JSON list
// of [SKU, name, category, price, quantity].
func matomoItems(o *order.Order) string {
	if len(o.Items) == 0 {
		return ""
	}
	rows := make([][]any, 0, len(o.Items))
	for _, it := range o.Items {
		q := it.Quantity
		if q == 0 {
			q = 1
		}
		rows = append(rows, []any{it.ID, it.Name, "", decimalNumber(it.Price, o.Currency), q})
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "&" in a name stays itself; the query escaping follows
	if err := enc.Encode(rows); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Classify implements Destination.
func (d *matomoPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	return o, snippet(body)
}

// Supports implements Destination.
func (d *matomoPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*matomoPreset)(nil)
