package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// TikTok Events API 2.0 (wire-formats.md §3.3).
//
//	POST https://business-api.tiktok.com/open_api/v1.3/event/track/
//	Access-Token: <access_token>
//	Content-Type: application/json
//
//	{"event_source":"web","event_source_id":<pixel code>,"data":[{"event":…,"event_time":<unix s>,
//	  "event_id":…,"user":{"ttclid":…,"email":sha256,"phone":sha256,"ip":…,"user_agent":…},"page":{"url":…},
//	  "properties":{"currency":…,"value":<number>,"order_id":…,"contents":[…]}}]}
//
// The 2.0 body is known only from third-party copies of TikTok's sample
// (the official SDK documents the older /pixel/track/ form); properties.
// order_id, the contents field names and top-level test_event_code are
// UNVERIFIED. Event names are TikTok's standard events (ads.tiktok.com
// supported-standard-events, 2025): purchase → Purchase, lead → SubmitForm,
// signup → CompleteRegistration, others as given.
//
// Params: pixel_code and access_token (required), test_event_code (sent
// only with test conversions, as for Meta). The customer's e-mail and phone
// go hashed unless the visitor denied ad_user_data at the click. TikTok answers HTTP 200 with a
// JSON code; anything but code 0 is a Reject (no rate-limit code is
// documented in the reference; HTTP 429 still retries). Refunds are not
// supported; every event by default.
func init() { register("tiktok", tiktokParams, newTikTok) }

var tiktokParams = paramSpec{
	required: []string{"pixel_code", "access_token"},
	optional: []string{"test_event_code"},
	secrets:  []string{"access_token"},
}

func newTikTok(cfg Config) (Destination, error) {
	const name = "tiktok"
	if err := checkParams(name, cfg, tiktokParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def: "https://business-api.tiktok.com", path: "/open_api/v1.3/event/track/",
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &tiktokPreset{ep: ep, pixel: p["pixel_code"], token: p["access_token"], testCode: p["test_event_code"], sup: sup}, nil
}

type tiktokPreset struct {
	ep                     endpoint
	pixel, token, testCode string
	sup                    support
}

type tiktokBody struct {
	EventSource   string        `json:"event_source"`
	EventSourceID string        `json:"event_source_id"`
	TestEventCode string        `json:"test_event_code,omitempty"`
	Data          []tiktokEvent `json:"data"`
}

type tiktokEvent struct {
	Event      string            `json:"event"`
	EventTime  int64             `json:"event_time"`
	EventID    string            `json:"event_id"`
	User       tiktokUser        `json:"user"`
	Page       *tiktokPage       `json:"page,omitempty"`
	Properties *tiktokProperties `json:"properties,omitempty"`
}

type tiktokUser struct {
	Ttclid    string `json:"ttclid,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

type tiktokPage struct {
	URL string `json:"url"`
}

type tiktokProperties struct {
	Currency string          `json:"currency,omitempty"`
	Value    json.Number     `json:"value,omitempty"`
	OrderID  string          `json:"order_id,omitempty"`
	Contents []tiktokContent `json:"contents,omitempty"`
}

type tiktokContent struct {
	ContentID   string      `json:"content_id,omitempty"`
	ContentName string      `json:"content_name,omitempty"`
	Price       json.Number `json:"price,omitempty"`
	Quantity    int64       `json:"quantity,omitempty"`
}

func tiktokEventName(event string) string {
	switch event {
	case "purchase":
		return "Purchase"
	case "lead":
		return "SubmitForm"
	case "signup":
		return "CompleteRegistration"
	}
	return event
}

// Render implements Destination.
func (d *tiktokPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	tp, o := &c.Touchpoint, &c.Order
	ev := tiktokEvent{
		Event:     tiktokEventName(o.Event),
		EventTime: eventTime(c).Unix(),
		EventID:   EventID(c),
		User:      tiktokUser{IP: tp.ClientIP, UserAgent: tp.UserAgent},
	}
	// TikTok hashes the trimmed, lower-cased e-mail and the E.164 phone
	// number with its "+".
	if cu := customerFor(c); cu != nil {
		ev.User.Email, ev.User.Phone = cu.Email, cu.PhoneE164
	}
	if tp.Param == "ttclid" {
		ev.User.Ttclid = tp.ClickID
	}
	if tp.LandingURL != "" {
		ev.Page = &tiktokPage{URL: tp.LandingURL}
	}
	props := tiktokProperties{OrderID: o.ID}
	if o.HasAmount {
		props.Currency = o.Currency
		props.Value = decimalNumber(o.Amount, o.Currency)
	}
	for _, it := range o.Items {
		props.Contents = append(props.Contents, tiktokContent{
			ContentID: it.ID, ContentName: it.Name, Price: decimalNumber(it.Price, o.Currency), Quantity: it.Quantity,
		})
	}
	if props.OrderID != "" || props.Value != "" || len(props.Contents) > 0 {
		ev.Properties = &props
	}
	body := tiktokBody{EventSource: "web", EventSourceID: d.pixel, Data: []tiktokEvent{ev}}
	if c.Test {
		body.TestEventCode = d.testCode
	}
	return postJSON(u, body, http.Header{"Access-Token": {d.token}})
}

// Classify implements Destination.
func (d *tiktokPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o != Delivered {
		return o, snippet(body)
	}
	var r struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Code == nil {
		return Reject, "answer has no JSON code: " + snippet(body)
	}
	if *r.Code != 0 {
		return Reject, fmt.Sprintf("code %d: %s", *r.Code, r.Message)
	}
	return Delivered, ""
}

// Supports implements Destination.
func (d *tiktokPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}
