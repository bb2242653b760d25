package postback

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Reddit Conversions API (ads-api.reddit.com/docs/v2, "Post conversion
// events"), the version two open-source integrations send today (Segment's
// reddit-conversions-api, PostHog's reddit_ads template).
//
//	POST https://ads-api.reddit.com/api/v2.0/conversions/events/<ad_account_id>
//	Authorization: Bearer <access_token>
//	User-Agent: caddy-postback/1 (conversions)
//	Content-Type: application/json
//
//	{"test_mode":false,"events":[{"event_at":"<RFC 3339>",
//	  "event_type":{"tracking_type":"Purchase"|"Lead"|"SignUp"|"Custom","custom_event_name":…},
//	  "click_id":<rdt_cid>,
//	  "event_metadata":{"conversion_id":…,"currency":…,"value_decimal":<number>,"item_count":…,
//	    "products":[{"id":…,"name":…}]},
//	  "user":{"email":sha256,"phone_number":sha256,"ip_address":sha256,"user_agent":…}}]}
//
// Events map to Reddit's tracking types: purchase and rebill → Purchase,
// lead → Lead, signup → SignUp, any other → Custom with its name.
// conversion_id is EventID, Reddit's key for dropping the pixel's copy of
// the same conversion. The e-mail is hashed in Reddit's own canonical form
// (local part cut at "+" and stripped to letters and digits, "Manual
// advanced matching"), the phone as E.164 with "+"; the visitor's IP
// address goes hashed, as Reddit takes it. Reddit asks API clients for a
// descriptive User-Agent. Test fires set test_mode.
//
// Params: ad_account_id and access_token (the conversion access token).
// Approved and pending orders, every event by default; no refunds.
func init() { register("reddit", redditParams, newReddit) }

var redditParams = paramSpec{
	required: []string{"ad_account_id", "access_token"},
	secrets:  []string{"access_token"},
}

// redditUserAgent identifies the client, as Reddit's API rules ask.
const redditUserAgent = "caddy-postback/1 (conversions)"

func newReddit(cfg Config) (Destination, error) {
	const name = "reddit"
	if err := checkParams(name, cfg, redditParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def:  "https://ads-api.reddit.com",
		path: "/api/v2.0/conversions/events/" + url.PathEscape(strings.TrimSpace(p["ad_account_id"])),
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &redditPreset{ep: ep, token: p["access_token"], sup: sup}, nil
}

type redditPreset struct {
	ep    endpoint
	token string
	sup   support
}

type redditBody struct {
	TestMode bool          `json:"test_mode"`
	Events   []redditEvent `json:"events"`
}

type redditEvent struct {
	EventAt       string          `json:"event_at"`
	EventType     redditEventType `json:"event_type"`
	ClickID       string          `json:"click_id,omitempty"`
	EventMetadata redditMetadata  `json:"event_metadata"`
	User          redditUser      `json:"user"`
}

type redditEventType struct {
	TrackingType    string `json:"tracking_type"`
	CustomEventName string `json:"custom_event_name,omitempty"`
}

type redditMetadata struct {
	ConversionID string          `json:"conversion_id"`
	Currency     string          `json:"currency,omitempty"`
	ValueDecimal json.Number     `json:"value_decimal,omitempty"`
	ItemCount    int64           `json:"item_count,omitempty"`
	Products     []redditProduct `json:"products,omitempty"`
}

type redditProduct struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

type redditUser struct {
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
	IPAddress   string `json:"ip_address,omitempty"`
	UserAgent   string `json:"user_agent,omitempty"`
}

func redditTrackingType(event string) redditEventType {
	switch event {
	case "purchase", order.EventRebill:
		return redditEventType{TrackingType: "Purchase"}
	case "lead":
		return redditEventType{TrackingType: "Lead"}
	case "signup":
		return redditEventType{TrackingType: "SignUp"}
	}
	return redditEventType{TrackingType: "Custom", CustomEventName: event}
}

// Render implements Destination.
func (d *redditPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	tp, o := &c.Touchpoint, &c.Order
	ev := redditEvent{
		EventAt:       eventTime(c).UTC().Format(time.RFC3339),
		EventType:     redditTrackingType(o.Event),
		EventMetadata: redditMetadata{ConversionID: EventID(c)},
		User:          redditUser{UserAgent: tp.UserAgent},
	}
	if tp.Param == "rdt_cid" {
		ev.ClickID = tp.ClickID
	}
	if tp.ClientIP != "" {
		ev.User.IPAddress = order.Hash(strings.TrimSpace(tp.ClientIP))
	}
	if cu := customerFor(c); cu != nil {
		ev.User.Email, ev.User.PhoneNumber = cu.EmailReddit, cu.PhoneE164
	}
	if o.HasAmount {
		ev.EventMetadata.Currency = o.Currency
		ev.EventMetadata.ValueDecimal = decimalNumber(o.Amount, o.Currency)
	}
	for _, it := range o.Items {
		ev.EventMetadata.ItemCount += it.Quantity
		ev.EventMetadata.Products = append(ev.EventMetadata.Products, redditProduct{ID: it.ID, Name: it.Name})
	}
	h := http.Header{"Authorization": {"Bearer " + d.token}, "User-Agent": {redditUserAgent}}
	return postJSON(u, redditBody{TestMode: c.Test, Events: []redditEvent{ev}}, h)
}

// Classify implements Destination.
func (d *redditPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return o, e.Message
	}
	return o, snippet(body)
}

// Supports implements Destination.
func (d *redditPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*redditPreset)(nil)
