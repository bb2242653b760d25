package postback

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// GA4 Measurement Protocol (wire-formats.md §3.2).
//
//	POST https://www.google-analytics.com/mp/collect?measurement_id=<id>&api_secret=<secret>
//	Content-Type: application/json
//
//	{"client_id":…,"consent":{"ad_user_data":"GRANTED"|"DENIED","ad_personalization":…},
//	 "events":[{"name":"purchase","params":{"transaction_id":…,"value":<number>,
//	  "currency":…,"coupon":…,"items":[{"item_id":…,"item_name":…,"price":<number>,"quantity":…}]}}]}
//
// consent carries the click's Google consent signals, each only when it
// is known (granted or denied).
//
// Params: measurement_id and api_secret (required). Events map to GA4's
// recommended names: purchase → purchase, lead → generate_lead, signup →
// sign_up, any other valid name as given. Refunds are supported: a refunded
// order or a "refund" event goes as GA4's refund event with the same
// transaction_id. Rejected orders are not (GA4 has no such event, and a
// refund for an order GA4 never saw would only skew revenue).
//
// client_id is Conversion.GAClientID (read from the _ga cookie). Without it,
// a stable ID is made from the credited click (network, click ID, capture
// time) in GA's own "<random>.<seconds>" shape, so every conversion of that
// click is one GA user; it does not join the browser's GA session.
//
// GA4's /mp/collect answers 2xx even for malformed events, so test
// conversions (Conversion.Test) go to /debug/mp/collect, which answers with
// validation messages; any message makes the test fire a Reject.
func init() { register("ga4_mp", ga4MpParams, newGA4) }

var ga4MpParams = paramSpec{required: []string{"measurement_id", "api_secret"}, secrets: []string{"api_secret"}}

func newGA4(cfg Config) (Destination, error) {
	const name = "ga4_mp"
	if err := checkParams(name, cfg, ga4MpParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	fields := []field{
		{"measurement_id", lit(p["measurement_id"])},
		{"api_secret", lit(p["api_secret"])},
	}
	opts := baseOptions{def: "https://www.google-analytics.com", path: "/mp/collect", reserved: fieldKeys(fields)}
	ep, err := resolveEndpoint(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	opts.path = "/debug/mp/collect"
	debug, err := resolveEndpoint(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending, order.StatusRefunded)
	if err != nil {
		return nil, err
	}
	return &ga4Preset{ep: ep, debug: debug, fields: fields, sup: sup}, nil
}

type ga4Preset struct {
	ep, debug endpoint
	fields    []field
	sup       support
}

type ga4Body struct {
	ClientID string      `json:"client_id"`
	Consent  *ga4Consent `json:"consent,omitempty"`
	Events   []ga4Event  `json:"events"`
}

type ga4Consent struct {
	AdUserData        string `json:"ad_user_data,omitempty"`
	AdPersonalization string `json:"ad_personalization,omitempty"`
}

// ga4ConsentOf returns the click's known Google consent signals, or nil.
func ga4ConsentOf(tp *record.Touchpoint) *ga4Consent {
	cs := tp.Consent
	if cs == nil {
		return nil
	}
	known := func(v string) string {
		if v == record.Granted || v == record.Denied {
			return strings.ToUpper(v)
		}
		return ""
	}
	c := &ga4Consent{AdUserData: known(cs.AdUserData), AdPersonalization: known(cs.AdPersonalization)}
	if *c == (ga4Consent{}) {
		return nil
	}
	return c
}

type ga4Event struct {
	Name   string    `json:"name"`
	Params ga4Params `json:"params"`
}

type ga4Params struct {
	TransactionID string      `json:"transaction_id,omitempty"`
	Value         json.Number `json:"value,omitempty"`
	Currency      string      `json:"currency,omitempty"`
	Coupon        string      `json:"coupon,omitempty"`
	Items         []ga4Item   `json:"items,omitempty"`
}

type ga4Item struct {
	ItemID   string      `json:"item_id,omitempty"`
	ItemName string      `json:"item_name,omitempty"`
	Price    json.Number `json:"price,omitempty"`
	Quantity int64       `json:"quantity,omitempty"`
}

// ga4MaxItems is GA4's cap on items per event.
const ga4MaxItems = 200

// ga4Name is GA4's rule for event names: a letter, then letters, digits and
// underscores, 40 characters at most.
var ga4Name = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,39}$`)

// ga4EventName maps an order to the GA4 event it becomes.
func ga4EventName(event string, status order.Status) string {
	if event == "refund" || status == order.StatusRefunded {
		return "refund"
	}
	switch event {
	case "lead":
		return "generate_lead"
	case "signup":
		return "sign_up"
	}
	return event
}

// Render implements Destination.
func (d *ga4Preset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	ep := d.ep
	if c.Test {
		ep = d.debug
	}
	u, err := ep.render(c, d.fields)
	if err != nil {
		return record.Request{}, err
	}
	o := &c.Order
	params := ga4Params{TransactionID: o.ID, Coupon: o.Coupon}
	if o.HasAmount {
		params.Value = decimalNumber(o.Amount, o.Currency)
		params.Currency = o.Currency
	}
	for i, it := range o.Items {
		if i == ga4MaxItems {
			break
		}
		params.Items = append(params.Items, ga4Item{
			ItemID: it.ID, ItemName: it.Name, Price: decimalNumber(it.Price, o.Currency), Quantity: it.Quantity,
		})
	}
	body := ga4Body{
		ClientID: ga4ClientID(c),
		Consent:  ga4ConsentOf(&c.Touchpoint),
		Events:   []ga4Event{{Name: ga4EventName(o.Event, o.Status), Params: params}},
	}
	return postJSON(u, body, nil)
}

// ga4ClientID returns the visitor's GA client ID, or a stable stand-in made
// from the credited click.
func ga4ClientID(c *record.Postback) string {
	if c.GAClientID != "" {
		return c.GAClientID
	}
	tp := &c.Touchpoint
	seed := tp.Network + "\x00" + tp.ClickID + "\x00" + strconv.FormatInt(tp.CapturedAt.UnixNano(), 10)
	if tp.ClickID == "" {
		seed = "order\x00" + c.Network + "\x00" + c.Order.ID
	}
	sum := sha256.Sum256([]byte(seed))
	ts := tp.CapturedAt.Unix()
	if tp.CapturedAt.IsZero() {
		ts = c.Time.Unix()
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(sum[:4])), 10) + "." + strconv.FormatInt(ts, 10)
}

// Classify implements Destination.
func (d *ga4Preset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o != Delivered {
		return o, snippet(body)
	}
	// Only the debug endpoint answers with a body.
	var v struct {
		ValidationMessages []struct {
			Description string `json:"description"`
		} `json:"validationMessages"`
	}
	if len(body) > 0 && json.Unmarshal(body, &v) == nil && len(v.ValidationMessages) > 0 {
		msgs := make([]string, len(v.ValidationMessages))
		for i, m := range v.ValidationMessages {
			msgs[i] = m.Description
		}
		return Reject, "validation: " + strings.Join(msgs, "; ")
	}
	return Delivered, ""
}

// Supports implements Destination. Event names GA4 would drop are refused
// here, so they never enter the outbox. The reserved prefixes (ga_, google_,
// firebase_) are GA's documented rule but not in the reference (UNVERIFIED).
func (d *ga4Preset) Supports(event string, status order.Status) bool {
	if !d.sup.allows(event, status) {
		return false
	}
	n := ga4EventName(event, status)
	return ga4Name.MatchString(n) && !strings.HasPrefix(n, "ga_") &&
		!strings.HasPrefix(n, "google_") && !strings.HasPrefix(n, "firebase_")
}
