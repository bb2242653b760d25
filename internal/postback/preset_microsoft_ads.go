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

// Microsoft Advertising Conversions API (UET CAPI).
//
//	POST https://capi.uet.microsoft.com/v1/<tag_id>/events
//	Authorization: Bearer <access_token>
//	Content-Type: application/json
//
//	{"data":[{"eventType":"custom","eventId":…,"eventName":…,"eventTime":<unix s>,"eventSourceUrl":…,
//	  "userData":{"msclkid":…,"em":sha256,"ph":sha256,"clientIpAddress":…,"clientUserAgent":…},
//	  "customData":{"transactionId":…,"value":<number>,"currency":…}}]}
//
// The shape follows Microsoft's guide as two open-source integrations send
// it (Segment's ms-bing-capi, PostHog's microsoft_ads template); the guide
// itself was not readable here. eventName is our event as it is: it must
// match the event action of a conversion goal on the tag. em is the
// trimmed, lower-cased e-mail and ph the E.164 phone number with its "+"
// (PostHog's template, which cites the guide; Segment hashes digits only),
// both hashed and sent unless the visitor denied ad_user_data.
//
// Params: tag_id and access_token (required). Microsoft has no test mode: a
// test fire is sent like any other. Events older than seven days are
// refused at send time (the guide's limit, as PostHog quotes it). An HTTP
// 200 can still list validation errors for the event (error.details); that
// is a Reject with Microsoft's message. Approved and pending orders, every
// event by default; no refunds.
func init() { register("microsoft_ads", microsoftAdsParams, newMicrosoftAds) }

var microsoftAdsParams = paramSpec{
	required: []string{"tag_id", "access_token"},
	secrets:  []string{"access_token"},
}

// microsoftMaxAge is how old an event the UET Conversions API takes.
const microsoftMaxAge = 7 * 24 * time.Hour

func newMicrosoftAds(cfg Config) (Destination, error) {
	const name = "microsoft_ads"
	if err := checkParams(name, cfg, microsoftAdsParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def: "https://capi.uet.microsoft.com", path: "/v1/" + url.PathEscape(strings.TrimSpace(p["tag_id"])) + "/events",
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &microsoftAdsPreset{ep: ep, token: p["access_token"], sup: sup, now: clock(cfg)}, nil
}

type microsoftAdsPreset struct {
	ep    endpoint
	token string
	sup   support
	now   func() time.Time
}

type microsoftAdsBody struct {
	Data []microsoftAdsEvent `json:"data"`
}

type microsoftAdsEvent struct {
	EventType      string                  `json:"eventType"`
	EventID        string                  `json:"eventId"`
	EventName      string                  `json:"eventName"`
	EventTime      int64                   `json:"eventTime"`
	EventSourceURL string                  `json:"eventSourceUrl,omitempty"`
	UserData       microsoftAdsUserData    `json:"userData"`
	CustomData     *microsoftAdsCustomData `json:"customData,omitempty"`
}

type microsoftAdsUserData struct {
	Msclkid         string `json:"msclkid,omitempty"`
	Em              string `json:"em,omitempty"`
	Ph              string `json:"ph,omitempty"`
	ClientIPAddress string `json:"clientIpAddress,omitempty"`
	ClientUserAgent string `json:"clientUserAgent,omitempty"`
}

type microsoftAdsCustomData struct {
	TransactionID string      `json:"transactionId,omitempty"`
	Value         json.Number `json:"value,omitempty"`
	Currency      string      `json:"currency,omitempty"`
}

// Render implements Destination.
func (d *microsoftAdsPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	if err := notOlderThan("microsoft_ads", c, d.now(), microsoftMaxAge, "7 days"); err != nil {
		return record.Request{}, err
	}
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	tp, o := &c.Touchpoint, &c.Order
	ev := microsoftAdsEvent{
		EventType: "custom",
		EventID:   EventID(c),
		EventName: o.Event,
		EventTime: eventTime(c).Unix(),
		UserData:  microsoftAdsUserData{ClientIPAddress: tp.ClientIP, ClientUserAgent: tp.UserAgent},
	}
	if isHTTPURL(tp.LandingURL) {
		ev.EventSourceURL = tp.LandingURL
	}
	if tp.Param == "msclkid" {
		ev.UserData.Msclkid = tp.ClickID
	}
	if cu := customerFor(c); cu != nil {
		ev.UserData.Em, ev.UserData.Ph = cu.Email, cu.PhoneE164
	}
	cd := microsoftAdsCustomData{TransactionID: o.ID}
	if o.HasAmount {
		cd.Value, cd.Currency = decimalNumber(o.Amount, o.Currency), o.Currency
	}
	if cd != (microsoftAdsCustomData{}) {
		ev.CustomData = &cd
	}
	return postJSON(u, microsoftAdsBody{Data: []microsoftAdsEvent{ev}}, http.Header{"Authorization": {"Bearer " + d.token}})
}

// Classify implements Destination.
func (d *microsoftAdsPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	var ans struct {
		EventsReceived *int `json:"eventsReceived"`
		Error          *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				PropertyName string `json:"propertyName"`
				ErrorMessage string `json:"errorMessage"`
			} `json:"details"`
		} `json:"error"`
	}
	parsed := len(body) > 0 && json.Unmarshal(body, &ans) == nil
	reason := snippet(body)
	if parsed && ans.Error != nil {
		parts := []string{strings.TrimSpace(ans.Error.Code + " " + ans.Error.Message)}
		for _, det := range ans.Error.Details {
			parts = append(parts, strings.TrimSpace(det.PropertyName+": "+det.ErrorMessage))
		}
		reason = strings.Join(parts, "; ")
	}
	o := ClassifyStatus(status)
	if o != Delivered {
		return o, reason
	}
	// One event per request: an error beside a 200 is that event's.
	if parsed && ans.Error != nil && (ans.EventsReceived == nil || *ans.EventsReceived == 0) {
		return Reject, fmt.Sprintf("event rejected: %s", reason)
	}
	return Delivered, ""
}

// Supports implements Destination.
func (d *microsoftAdsPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*microsoftAdsPreset)(nil)
