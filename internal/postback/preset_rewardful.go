package postback

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Rewardful REST API, "Create sale" (developers.rewardful.com).
//
//	POST https://api.getrewardful.com/v1/sales
//	Authorization: Basic base64(<api_secret>:)
//	Content-Type: application/x-www-form-urlencoded
//
//	referral_id=<referral UUID>&external_id=<order ID>&currency=<ISO>&charge_amount_cents=<minor>
//	&refund_amount_cents=0&tax_amount_cents=0&charged_at=<RFC 3339>&invoiced_at=<RFC 3339>&label=<event>
//
// referral_id is the credited touchpoint's click ID, which must be a
// Rewardful referral: the UUID Rewardful's script creates for a visitor
// who arrived through an affiliate link (Rewardful.referral, kept in its
// rewardful.referral cookie). The ?via= value of the link itself is an
// affiliate's link token, not a referral, and Rewardful's API has no call
// that turns one into the other; a click ID that is not a UUID is refused
// at send time with that reason. external_id is the order ID, so a
// subscription's rebills (each its own order) are sales of their own on
// the same referral.
//
// Params: api_secret (required). Events: purchase and rebill. Refunds are
// not sent: Rewardful updates a sale by its own sale ID, which only the
// answer to the create call knows (two requests for one delivery). The
// amount is required.
func init() { register("rewardful", rewardfulParams, newRewardful) }

var rewardfulParams = paramSpec{required: []string{"api_secret"}, secrets: []string{"api_secret"}}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func newRewardful(cfg Config) (Destination, error) {
	const name = "rewardful"
	if err := checkParams(name, cfg, rewardfulParams); err != nil {
		return nil, err
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{def: "https://api.getrewardful.com", path: "/v1/sales"})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase,"+order.EventRebill, order.StatusApproved)
	if err != nil {
		return nil, err
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Params["api_secret"]+":"))
	return &rewardfulPreset{ep: ep, auth: auth, sup: sup}, nil
}

type rewardfulPreset struct {
	ep   endpoint
	auth string
	sup  support
}

// Render implements Destination.
func (d *rewardfulPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	referral := c.Touchpoint.ClickID
	if !uuidPattern.MatchString(referral) {
		return record.Request{}, fmt.Errorf("%w: rewardful needs the visitor's referral ID (a UUID, Rewardful.referral), and the credited click is a %q value that is not one",
			ErrRejected, c.Touchpoint.Param)
	}
	cents, err := orderAmountMinor("rewardful", c)
	if err != nil {
		return record.Request{}, err
	}
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	o := &c.Order
	at := eventTime(c).UTC().Format(time.RFC3339)
	form := url.Values{
		"referral_id":         {referral},
		"external_id":         {o.ID},
		"currency":            {o.Currency},
		"charge_amount_cents": {strconv.FormatInt(cents, 10)},
		"refund_amount_cents": {"0"},
		"tax_amount_cents":    {"0"},
		"charged_at":          {at},
		"invoiced_at":         {at},
		"label":               {o.Event},
	}
	h := http.Header{"Authorization": {d.auth}, "Content-Type": {"application/x-www-form-urlencoded"}}
	return record.Request{Method: http.MethodPost, URL: u, Header: h, Body: form.Encode()}, nil
}

// Classify implements Destination.
func (d *rewardfulPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	return classifyAPI(status, body)
}

// Supports implements Destination.
func (d *rewardfulPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*rewardfulPreset)(nil)
