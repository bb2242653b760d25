package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Snapchat Conversions API v3 (developers.snap.com, "Using the API",
// "Parameters", "Verify set up").
//
//	POST https://tr.snapchat.com/v3/<pixel_id>/events?access_token=<token>
//	POST https://tr.snapchat.com/v3/<pixel_id>/events/validate?access_token=<token>   (test fires)
//	Content-Type: application/json
//
//	{"data":[{"event_name":"PURCHASE","event_time":<unix s>,"event_id":…,"action_source":"WEB",
//	  "event_source_url":…,
//	  "user_data":{"em":[sha256],"ph":[sha256],"fn":…,"ln":…,"ct":…,"st":…,"zp":…,"country":…,
//	    "client_ip_address":…,"client_user_agent":…,"sc_click_id":<ScCid>},
//	  "custom_data":{"currency":…,"value":"<decimal>","order_id":…,
//	    "contents":[{"id":…,"quantity":…,"item_price":"<decimal>"}],"num_items":…}}]}
//
// Events map to Snap's names: purchase and rebill → PURCHASE, signup →
// SIGN_UP, any other upper-cased as given. event_id pairs with the pixel's
// client_dedup_id. The click ID is the touchpoint's ScCid (sccid). The
// customer's identifiers are the order's hashes (Snap normalises like Meta:
// e-mail trimmed and lower-cased, phone as digits with the country code),
// sent unless the visitor denied ad_user_data. Events older than 37 days
// are refused at send time ("events can have a date of maximum 37 days
// back").
//
// Answers are JSON with a status: anything but VALID or SUCCESS beside a
// 200 is a Reject with Snap's reason. Approved and pending orders, every
// event by default; no refunds.
func init() { register("snapchat", snapchatParams, newSnapchat) }

var snapchatParams = paramSpec{
	required: []string{"pixel_id", "access_token"},
	secrets:  []string{"access_token"},
}

// snapchatMaxAge is how old an event Snap's Conversions API takes.
const snapchatMaxAge = 37 * 24 * time.Hour

func newSnapchat(cfg Config) (Destination, error) {
	const name = "snapchat"
	if err := checkParams(name, cfg, snapchatParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	fields := []field{{"access_token", lit(p["access_token"])}}
	opts := baseOptions{
		def:      "https://tr.snapchat.com",
		path:     "/v3/" + url.PathEscape(strings.TrimSpace(p["pixel_id"])) + "/events",
		reserved: fieldKeys(fields),
	}
	ep, err := resolveEndpoint(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	opts.path += "/validate"
	validate, err := resolveEndpoint(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &snapchatPreset{ep: ep, validate: validate, fields: fields, sup: sup, now: clock(cfg)}, nil
}

type snapchatPreset struct {
	ep, validate endpoint
	fields       []field
	sup          support
	now          func() time.Time
}

type snapchatBody struct {
	Data []snapchatEvent `json:"data"`
}

type snapchatEvent struct {
	EventName      string              `json:"event_name"`
	EventTime      int64               `json:"event_time"`
	EventID        string              `json:"event_id"`
	ActionSource   string              `json:"action_source"`
	EventSourceURL string              `json:"event_source_url,omitempty"`
	UserData       snapchatUserData    `json:"user_data"`
	CustomData     *snapchatCustomData `json:"custom_data,omitempty"`
}

type snapchatUserData struct {
	capiUserData
	ScClickID string `json:"sc_click_id,omitempty"`
}

type snapchatCustomData struct {
	Currency string            `json:"currency,omitempty"`
	Value    string            `json:"value,omitempty"`
	OrderID  string            `json:"order_id,omitempty"`
	Contents []snapchatContent `json:"contents,omitempty"`
	NumItems int64             `json:"num_items,omitempty"`
}

type snapchatContent struct {
	ID        string `json:"id,omitempty"`
	Quantity  int64  `json:"quantity,omitempty"`
	ItemPrice string `json:"item_price,omitempty"`
}

func snapchatEventName(event string) string {
	switch event {
	case "purchase", order.EventRebill:
		return "PURCHASE"
	case "signup":
		return "SIGN_UP"
	}
	return strings.ToUpper(event)
}

// Render implements Destination.
func (d *snapchatPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	if err := notOlderThan("snapchat", c, d.now(), snapchatMaxAge, "37 days"); err != nil {
		return record.Request{}, err
	}
	ep := d.ep
	if c.Test {
		ep = d.validate
	}
	u, err := ep.render(c, d.fields)
	if err != nil {
		return record.Request{}, err
	}
	tp, o := &c.Touchpoint, &c.Order
	ev := snapchatEvent{
		EventName:    snapchatEventName(o.Event),
		EventTime:    eventTime(c).Unix(),
		EventID:      EventID(c),
		ActionSource: "WEB",
		UserData:     snapchatUserData{capiUserData: newCAPIUserData(c)},
	}
	if isHTTPURL(tp.LandingURL) {
		ev.EventSourceURL = tp.LandingURL
	}
	if strings.EqualFold(tp.Param, "sccid") {
		ev.UserData.ScClickID = tp.ClickID
	}
	cd := snapchatCustomData{OrderID: o.ID}
	if o.HasAmount {
		cd.Currency, cd.Value = o.Currency, o.Amount.ForCurrency(o.Currency)
	}
	for _, it := range o.Items {
		cd.Contents = append(cd.Contents, snapchatContent{ID: it.ID, Quantity: it.Quantity, ItemPrice: it.Price.ForCurrency(o.Currency)})
		cd.NumItems += it.Quantity
	}
	ev.CustomData = &cd
	return postJSON(u, snapchatBody{Data: []snapchatEvent{ev}}, nil)
}

// Classify implements Destination.
func (d *snapchatPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	var ans struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	parsed := len(body) > 0 && json.Unmarshal(body, &ans) == nil
	o := ClassifyStatus(status)
	if o != Delivered {
		if parsed && ans.Reason != "" {
			return o, strings.TrimSpace(ans.Status + ": " + ans.Reason)
		}
		return o, snippet(body)
	}
	if parsed && ans.Status != "" && ans.Status != "VALID" && ans.Status != "SUCCESS" {
		return Reject, fmt.Sprintf("%s: %s", ans.Status, ans.Reason)
	}
	return Delivered, ""
}

// Supports implements Destination.
func (d *snapchatPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*snapchatPreset)(nil)
