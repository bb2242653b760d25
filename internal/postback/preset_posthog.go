package postback

import (
	"context"
	"net/http"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// PostHog capture API (posthog.com/docs/api/capture).
//
//	POST https://us.i.posthog.com/i/v0/e/       (region eu: eu.i.posthog.com; self-hosted: url or domain)
//	Content-Type: application/json
//
//	{"api_key":<project API key>,"event":…,"distinct_id":<visitor>,"uuid":<event UUID>,
//	 "timestamp":"<RFC 3339>","properties":{"order_id":…,"revenue":<number>,"currency":…,"coupon":…,
//	   "$current_url":<landing URL>,"$process_person_profile":false,"$geoip_disable":true}}
//
// distinct_id is a pseudonymous visitor ID made from the credited click
// (the same for a sale and its rebills); person profiles are not
// processed and the sender's IP is not geolocated, since it is this
// server's, not the visitor's. uuid is derived from EventID, so a repeated
// delivery is the same event. PostHog has no test mode. Approved and
// pending orders, every event by default.
//
// PostHog, Plausible and Matomo are told of the conversion and its
// revenue, never of the customer: no e-mail, no phone, no click ID.
func init() { register("posthog", posthogParams, newPostHog) }

var posthogParams = paramSpec{
	required: []string{"api_key"},
	optional: []string{"region"},
	secrets:  []string{"api_key"},
}

func newPostHog(cfg Config) (Destination, error) {
	const name = "posthog"
	if err := checkParams(name, cfg, posthogParams); err != nil {
		return nil, err
	}
	host := "https://us.i.posthog.com"
	switch r := cfg.Params["region"]; r {
	case "", "us":
	case "eu":
		host = "https://eu.i.posthog.com"
	default:
		return nil, errorf("preset posthog: region %q: want us or eu (a self-hosted PostHog takes url or domain)", r)
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{def: host, path: "/i/v0/e/"})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &posthogPreset{ep: ep, key: cfg.Params["api_key"], sup: sup}, nil
}

type posthogPreset struct {
	ep  endpoint
	key string
	sup support
}

type posthogBody struct {
	APIKey     string         `json:"api_key"`
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	UUID       string         `json:"uuid"`
	Timestamp  string         `json:"timestamp"`
	Properties map[string]any `json:"properties"`
}

// Render implements Destination.
func (d *posthogPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	o := &c.Order
	props := map[string]any{
		"order_id":                o.ID,
		"$process_person_profile": false,
		"$geoip_disable":          true,
	}
	if o.HasAmount {
		props["revenue"], props["currency"] = decimalNumber(o.Amount, o.Currency), o.Currency
	}
	if o.Coupon != "" {
		props["coupon"] = o.Coupon
	}
	if isHTTPURL(c.Touchpoint.LandingURL) {
		props["$current_url"] = c.Touchpoint.LandingURL
	}
	return postJSON(u, posthogBody{
		APIKey: d.key, Event: o.Event, DistinctID: visitorID(c), UUID: eventUUID(c),
		Timestamp: eventTime(c).UTC().Format(time.RFC3339), Properties: props,
	}, nil)
}

// Classify implements Destination.
func (d *posthogPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	return o, snippet(body)
}

// Supports implements Destination.
func (d *posthogPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*posthogPreset)(nil)
