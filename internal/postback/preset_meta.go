package postback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Meta Conversions API (wire-formats.md §3.1, §1.1).
//
//	POST https://graph.facebook.com/<api_version>/<pixel_id>/events?access_token=<token>
//	Content-Type: application/json
//
//	{"data":[{"event_name":…,"event_time":<unix s>,"event_id":…,"action_source":"website",
//	  "event_source_url":<landing URL>,
//	  "user_data":{"em":[sha256],"ph":[sha256],"fn":…,"ln":…,"ct":…,"st":…,"zp":…,"country":…,
//	    "client_ip_address":…,"client_user_agent":…,"fbc":…},
//	  "custom_data":{"currency":…,"value":<number>,"order_id":…}}],
//	 "test_event_code":…}
//
// Params: pixel_id and access_token (required), api_version (default
// v21.0, the version in Meta's doc example), test_event_code. The test code
// is sent only with test conversions (Conversion.Test), so a code left in the
// config never diverts real traffic into Meta's test tool. The token rides in
// the query as documented; a Masker hides it. Meta takes no refunds: only
// approved and pending orders; every event by default.
//
// The customer's identifiers are the order's hashes in Meta's forms, sent
// unless the visitor denied ad_user_data at the click. An event older than
// seven days is refused at send time: Meta answers such a request with an
// error for every event in it.
func init() { register("meta_capi", metaCapiParams, newMetaCAPI) }

var metaCapiParams = paramSpec{
	required: []string{"pixel_id", "access_token"},
	optional: []string{"api_version", "test_event_code"},
	secrets:  []string{"access_token"},
}

// metaAPIVersion is the Graph API version used when none is configured.
const metaAPIVersion = "v21.0"

func newMetaCAPI(cfg Config) (Destination, error) {
	const name = "meta_capi"
	if err := checkParams(name, cfg, metaCapiParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	ver := p["api_version"]
	if ver == "" {
		ver = metaAPIVersion
	}
	if !strings.HasPrefix(ver, "v") || strings.ContainsAny(ver, "/?#") {
		return nil, errorf("preset meta_capi: api_version %q: want the form v21.0", ver)
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def:      "https://graph.facebook.com",
		path:     "/" + url.PathEscape(ver) + "/" + url.PathEscape(p["pixel_id"]) + "/events",
		reserved: []string{"access_token"},
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &metaPreset{
		ep:       ep,
		fields:   []field{{"access_token", lit(p["access_token"])}},
		testCode: p["test_event_code"],
		sup:      sup,
		now:      clock(cfg),
	}, nil
}

type metaPreset struct {
	ep       endpoint
	fields   []field
	testCode string
	sup      support
	now      func() time.Time
}

// metaMaxAge is how old an event Meta takes ("up to 7 days in the past").
const metaMaxAge = 7 * 24 * time.Hour

type metaBody struct {
	Data          []metaEvent `json:"data"`
	TestEventCode string      `json:"test_event_code,omitempty"`
}

type metaEvent struct {
	EventName      string          `json:"event_name"`
	EventTime      int64           `json:"event_time"`
	EventID        string          `json:"event_id"`
	ActionSource   string          `json:"action_source"`
	EventSourceURL string          `json:"event_source_url,omitempty"`
	UserData       metaUserData    `json:"user_data"`
	CustomData     *metaCustomData `json:"custom_data,omitempty"`
}

type metaUserData struct {
	capiUserData
	Fbc string `json:"fbc,omitempty"`
}

// capiUserData is the part of user_data that Meta's Conversions API and
// those modelled on it (Snapchat's) share: the customer's hashed e-mail and
// phone, their address fields, and the visitor's address and user agent.
type capiUserData struct {
	Em              []string `json:"em,omitempty"`
	Ph              []string `json:"ph,omitempty"`
	Fn              string   `json:"fn,omitempty"`
	Ln              string   `json:"ln,omitempty"`
	Ct              string   `json:"ct,omitempty"`
	St              string   `json:"st,omitempty"`
	Zp              string   `json:"zp,omitempty"`
	Country         string   `json:"country,omitempty"`
	ClientIPAddress string   `json:"client_ip_address,omitempty"`
	ClientUserAgent string   `json:"client_user_agent,omitempty"`
}

// newCAPIUserData fills capiUserData from the click and, unless the
// visitor withheld it, the order's customer.
func newCAPIUserData(c *record.Postback) capiUserData {
	ud := capiUserData{ClientIPAddress: c.Touchpoint.ClientIP, ClientUserAgent: c.Touchpoint.UserAgent}
	if cu := customerFor(c); cu != nil {
		ud.Em, ud.Ph = hashList(cu.Email), hashList(cu.Phone)
		ud.Fn, ud.Ln, ud.Ct, ud.St, ud.Zp, ud.Country = cu.FirstName, cu.LastName, cu.City, cu.Region, cu.PostalCode, cu.Country
	}
	return ud
}

type metaCustomData struct {
	Currency string      `json:"currency,omitempty"`
	Value    json.Number `json:"value,omitempty"`
	OrderID  string      `json:"order_id,omitempty"`
}

// metaEventName maps our events to Meta's standard event names; any other
// event goes as given (a custom event).
func metaEventName(event string) string {
	switch event {
	case "purchase":
		return "Purchase"
	case "lead":
		return "Lead"
	case "signup":
		return "CompleteRegistration"
	}
	return event
}

// Render implements Destination.
func (d *metaPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	if err := notOlderThan("meta_capi", c, d.now(), metaMaxAge, "7 days"); err != nil {
		return record.Request{}, err
	}
	u, err := d.ep.render(c, d.fields)
	if err != nil {
		return record.Request{}, err
	}
	tp := &c.Touchpoint
	ev := metaEvent{
		EventName:    metaEventName(c.Order.Event),
		EventTime:    eventTime(c).Unix(),
		EventID:      EventID(c),
		ActionSource: "website",
		UserData:     metaUserData{capiUserData: newCAPIUserData(c), Fbc: metaFbc(c)},
	}
	// Meta requires event_source_url to begin with http:// or https://.
	if isHTTPURL(tp.LandingURL) {
		ev.EventSourceURL = tp.LandingURL
	}
	cd := metaCustomData{OrderID: c.Order.ID}
	if c.Order.HasAmount {
		cd.Currency = c.Order.Currency
		cd.Value = decimalNumber(c.Order.Amount, c.Order.Currency)
	}
	if cd != (metaCustomData{}) {
		ev.CustomData = &cd
	}
	body := metaBody{Data: []metaEvent{ev}}
	if c.Test {
		body.TestEventCode = d.testCode
	}
	return postJSON(u, body, nil)
}

// metaFbc builds the fbc value from a Meta click, as Meta's param builder
// does for a fresh fbclid: fb.<subdomain index 1>.<click time ms>.<fbclid>.
// The click time is the touchpoint's first capture, kept stable by the
// session store, so retries and re-renders send the same fbc.
func metaFbc(c *record.Postback) string {
	tp := &c.Touchpoint
	if tp.Param != "fbclid" || tp.ClickID == "" || tp.CapturedAt.IsZero() {
		return ""
	}
	return "fb.1." + strconv.FormatInt(tp.CapturedAt.UnixMilli(), 10) + "." + tp.ClickID
}

// hashList is a one-hash list, or nil for no hash.
func hashList(h string) []string {
	if h == "" {
		return nil
	}
	return []string{h}
}

// decimalNumber renders an amount as a JSON number straight from its
// decimal digits, so no float ever rounds it.
func decimalNumber(d order.Decimal, currency string) json.Number {
	return json.Number(d.ForCurrency(currency))
}

// postJSON is a POST of body to u as JSON, encoded without HTML escaping:
// the receivers are APIs, and "&" in a landing URL should read as itself.
// header, when not nil, holds the preset's other headers.
func postJSON(u string, body any, header http.Header) (record.Request, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return record.Request{}, fmt.Errorf("encoding body: %w", err)
	}
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return record.Request{Method: http.MethodPost, URL: u, Header: header, Body: string(bytes.TrimRight(b.Bytes(), "\n"))}, nil
}

// Classify implements Destination. Besides the status, it reads Graph API
// error codes documented as temporary (1 API Unknown, 2 API Service, 4 API
// Too Many Calls; 17 API User Too Many Calls and 341 Application limit
// reached from the same table, not in the excerpt read — UNVERIFIED), which
// Meta may send with a 400.
func (d *metaPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != 0 {
		reason := fmt.Sprintf("graph error %d: %s", e.Error.Code, e.Error.Message)
		switch e.Error.Code {
		case 1, 2, 4, 17, 341:
			return Retry, reason
		}
		return o, reason
	}
	return o, snippet(body)
}

// Supports implements Destination.
func (d *metaPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}
