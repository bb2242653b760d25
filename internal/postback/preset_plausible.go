package postback

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Plausible Events API (plausible.io/docs/events-api).
//
//	POST https://plausible.io/api/event          (self-hosted: url or domain)
//	User-Agent: <the visitor's user agent>
//	X-Forwarded-For: <the visitor's IP address>
//	Content-Type: application/json
//
//	{"name":…,"url":<landing URL>,"domain":<site>,"referrer":…,"props":{"order_id":…},
//	 "revenue":{"currency":…,"amount":"<decimal>"}}
//
// Plausible counts unique visitors from the User-Agent and X-Forwarded-For
// headers, so they carry the visitor's, as read at the click; a conversion
// without the visitor's user agent is refused at send time. Param site is
// the site's domain as registered in Plausible. Limits checked at send
// time: an event name up to 120 characters and a URL up to 2000 bytes.
// Plausible has no test mode and answers 202 whatever it keeps. Approved
// and pending orders, every event by default.
func init() { register("plausible", plausibleParams, newPlausible) }

var plausibleParams = paramSpec{required: []string{"site"}}

// Plausible's limits on an event.
const (
	plausibleMaxName = 120
	plausibleMaxURL  = 2000
)

func newPlausible(cfg Config) (Destination, error) {
	const name = "plausible"
	if err := checkParams(name, cfg, plausibleParams); err != nil {
		return nil, err
	}
	site := strings.TrimSpace(cfg.Params["site"])
	if strings.ContainsAny(site, "/?#@ ") {
		return nil, errorf("preset plausible: site %q: want the site's domain as Plausible knows it", site)
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{def: "https://plausible.io", path: "/api/event"})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &plausiblePreset{ep: ep, site: site, sup: sup}, nil
}

type plausiblePreset struct {
	ep   endpoint
	site string
	sup  support
}

type plausibleBody struct {
	Name     string            `json:"name"`
	URL      string            `json:"url"`
	Domain   string            `json:"domain"`
	Referrer string            `json:"referrer,omitempty"`
	Props    map[string]string `json:"props,omitempty"`
	Revenue  *plausibleRevenue `json:"revenue,omitempty"`
}

type plausibleRevenue struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// Render implements Destination.
func (d *plausiblePreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	tp, o := &c.Touchpoint, &c.Order
	if tp.UserAgent == "" {
		return record.Request{}, fmt.Errorf("%w: plausible counts visitors by their user agent, and the credited click has none", ErrRejected)
	}
	if utf8.RuneCountInString(o.Event) > plausibleMaxName {
		return record.Request{}, fmt.Errorf("%w: plausible takes event names up to %d characters", ErrRejected, plausibleMaxName)
	}
	page := tp.LandingURL
	if !isHTTPURL(page) {
		page = "https://" + d.site + "/"
	}
	if len(page) > plausibleMaxURL {
		return record.Request{}, fmt.Errorf("%w: plausible takes URLs up to %d bytes; the landing URL has %d", ErrRejected, plausibleMaxURL, len(page))
	}
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	body := plausibleBody{Name: o.Event, URL: page, Domain: d.site, Referrer: tp.Referrer}
	if o.ID != "" {
		body.Props = map[string]string{"order_id": o.ID}
	}
	if o.HasAmount && o.Currency != "" {
		body.Revenue = &plausibleRevenue{Currency: o.Currency, Amount: o.Amount.ForCurrency(o.Currency)}
	}
	h := http.Header{"User-Agent": {tp.UserAgent}}
	if tp.ClientIP != "" {
		h.Set("X-Forwarded-For", tp.ClientIP)
	}
	return postJSON(u, body, h)
}

// Classify implements Destination.
func (d *plausiblePreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	return o, snippet(body)
}

// Supports implements Destination.
func (d *plausiblePreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*plausiblePreset)(nil)
