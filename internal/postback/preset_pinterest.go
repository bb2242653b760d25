package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Pinterest Conversions API (API v5, events/create; pinterest/api-description
// v5/openapi.yaml).
//
//	POST https://api.pinterest.com/v5/ad_accounts/<ad_account_id>/events[?test=true]
//	Authorization: Bearer <access_token>
//	Content-Type: application/json
//
//	{"data":[{"event_name":"checkout","action_source":"web","event_time":<unix s>,"event_id":…,
//	  "event_source_url":…,"opt_out":false,
//	  "user_data":{"em":[sha256],"ph":[sha256],"fn":[…],"ln":[…],"ct":[…],"st":[…],"zp":[…],"country":[…],
//	    "client_ip_address":…,"client_user_agent":…,"click_id":<epik>},
//	  "custom_data":{"currency":…,"value":"<decimal>","order_id":…,"content_ids":[…],
//	    "contents":[{"id":…,"item_name":…,"item_price":"<decimal>","quantity":…}],"num_items":…}}]}
//
// Events map to Pinterest's names: purchase and rebill → checkout, lead →
// lead, signup → signup, any other → custom. The click ID is the
// touchpoint's epik. event_id is EventID, which the Pinterest tag must send
// too for Pinterest to drop the duplicate. Pinterest requires an e-mail, a
// mobile ad ID, or both the IP address and the user agent: an event with
// none of them is refused at send time. Test fires add ?test=true
// ("the events will not be recorded but the API will still return the
// same response messages").
//
// Answers: HTTP 200 lists each event's status; "failed" is a Reject with
// its error_message. 422 ("not all events were successfully processed") is
// a Reject. Approved and pending orders, every event by default; no
// refunds.
func init() { register("pinterest", pinterestParams, newPinterest) }

var pinterestParams = paramSpec{
	required: []string{"ad_account_id", "access_token"},
	secrets:  []string{"access_token"},
}

func newPinterest(cfg Config) (Destination, error) {
	const name = "pinterest"
	if err := checkParams(name, cfg, pinterestParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	opts := baseOptions{
		def:      "https://api.pinterest.com",
		path:     "/v5/ad_accounts/" + url.PathEscape(strings.TrimSpace(p["ad_account_id"])) + "/events",
		reserved: []string{"test"},
	}
	ep, err := resolveEndpoint(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &pinterestPreset{ep: ep, token: p["access_token"], sup: sup}, nil
}

type pinterestPreset struct {
	ep    endpoint
	token string
	sup   support
}

type pinterestBody struct {
	Data []pinterestEvent `json:"data"`
}

type pinterestEvent struct {
	EventName      string               `json:"event_name"`
	ActionSource   string               `json:"action_source"`
	EventTime      int64                `json:"event_time"`
	EventID        string               `json:"event_id"`
	EventSourceURL string               `json:"event_source_url,omitempty"`
	OptOut         bool                 `json:"opt_out"`
	UserData       pinterestUserData    `json:"user_data"`
	CustomData     *pinterestCustomData `json:"custom_data,omitempty"`
}

type pinterestUserData struct {
	Em              []string `json:"em,omitempty"`
	Ph              []string `json:"ph,omitempty"`
	Fn              []string `json:"fn,omitempty"`
	Ln              []string `json:"ln,omitempty"`
	Ct              []string `json:"ct,omitempty"`
	St              []string `json:"st,omitempty"`
	Zp              []string `json:"zp,omitempty"`
	Country         []string `json:"country,omitempty"`
	ClientIPAddress string   `json:"client_ip_address,omitempty"`
	ClientUserAgent string   `json:"client_user_agent,omitempty"`
	ClickID         string   `json:"click_id,omitempty"`
}

type pinterestCustomData struct {
	Currency   string             `json:"currency,omitempty"`
	Value      string             `json:"value,omitempty"`
	OrderID    string             `json:"order_id,omitempty"`
	ContentIDs []string           `json:"content_ids,omitempty"`
	Contents   []pinterestContent `json:"contents,omitempty"`
	NumItems   int64              `json:"num_items,omitempty"`
}

type pinterestContent struct {
	ID        string `json:"id,omitempty"`
	ItemName  string `json:"item_name,omitempty"`
	ItemPrice string `json:"item_price,omitempty"`
	Quantity  int64  `json:"quantity,omitempty"`
}

func pinterestEventName(event string) string {
	switch event {
	case "purchase", order.EventRebill:
		return "checkout"
	case "lead", "signup":
		return event
	}
	return "custom"
}

// Render implements Destination.
func (d *pinterestPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	tp, o := &c.Touchpoint, &c.Order
	ud := pinterestUserData{ClientIPAddress: tp.ClientIP, ClientUserAgent: tp.UserAgent}
	if tp.Param == "epik" {
		ud.ClickID = tp.ClickID
	}
	if cu := customerFor(c); cu != nil {
		ud.Em, ud.Ph = hashList(cu.Email), hashList(cu.Phone)
		ud.Fn, ud.Ln, ud.Ct = hashList(cu.FirstName), hashList(cu.LastName), hashList(cu.City)
		ud.St, ud.Zp, ud.Country = hashList(cu.Region), hashList(cu.PostalCode), hashList(cu.Country)
	}
	if len(ud.Em) == 0 && (ud.ClientIPAddress == "" || ud.ClientUserAgent == "") {
		return record.Request{}, fmt.Errorf("%w: pinterest needs the customer's e-mail or both the visitor's IP address and user agent", ErrRejected)
	}
	ev := pinterestEvent{
		EventName:    pinterestEventName(o.Event),
		ActionSource: "web",
		EventTime:    eventTime(c).Unix(),
		EventID:      EventID(c),
		UserData:     ud,
	}
	if isHTTPURL(tp.LandingURL) {
		ev.EventSourceURL = tp.LandingURL
	}
	cd := pinterestCustomData{OrderID: o.ID}
	if o.HasAmount {
		cd.Currency, cd.Value = o.Currency, o.Amount.ForCurrency(o.Currency)
	}
	for _, it := range o.Items {
		if it.ID != "" {
			cd.ContentIDs = append(cd.ContentIDs, it.ID)
		}
		cd.Contents = append(cd.Contents, pinterestContent{
			ID: it.ID, ItemName: it.Name, ItemPrice: it.Price.ForCurrency(o.Currency), Quantity: it.Quantity,
		})
		cd.NumItems += it.Quantity
	}
	ev.CustomData = &cd
	var fields []field
	if c.Test {
		fields = []field{{"test", lit("true")}}
	}
	u, err := d.ep.render(c, fields)
	if err != nil {
		return record.Request{}, err
	}
	return postJSON(u, pinterestBody{Data: []pinterestEvent{ev}}, http.Header{"Authorization": {"Bearer " + d.token}})
}

// Classify implements Destination.
func (d *pinterestPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o != Delivered {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return o, fmt.Sprintf("code %d: %s", e.Code, e.Message)
		}
		return o, snippet(body)
	}
	var ans struct {
		Events []struct {
			Status       string `json:"status"`
			ErrorMessage string `json:"error_message"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return Reject, "answer is not JSON: " + snippet(body)
	}
	for _, ev := range ans.Events {
		if ev.Status == "failed" {
			return Reject, "event failed: " + ev.ErrorMessage
		}
	}
	if len(ans.Events) == 0 {
		return Reject, "answer lists no processed event: " + snippet(body)
	}
	return Delivered, ""
}

// Supports implements Destination.
func (d *pinterestPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*pinterestPreset)(nil)
