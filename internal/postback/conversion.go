// Package postback turns a credited conversion into the exact HTTP request a
// network expects: URL and body templates with per-component escaping, and
// network presets that know each destination's dialect and how it answers.
package postback

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// EventID is a stable ID of (network, event, order): the same conversion
// always yields the same value, so destinations that dedup on an event ID
// (Meta, TikTok, RedTrack) drop our retries and match the browser pixel
// when the site sends the same value.
func EventID(c *record.Postback) string {
	sum := sha256.Sum256([]byte(c.Network + "\x00" + c.Order.Event + "\x00" + c.Order.ID))
	return hex.EncodeToString(sum[:12])
}

// value returns the value of a template token for a conversion, and
// whether the token is known.
func value(c *record.Postback, token string) (string, bool) {
	o := &c.Order
	switch token {
	case "click_id":
		return c.Touchpoint.ClickID, true
	case "order_id":
		return o.ID, true
	case "amount":
		if !o.HasAmount {
			return "", true
		}
		return o.Amount.ForCurrency(o.Currency), true
	case "amount_minor":
		if !o.HasAmount {
			return "", true
		}
		return strconv.FormatInt(o.Amount.Minor(o.Currency), 10), true
	case "currency":
		return o.Currency, true
	case "event":
		return o.Event, true
	case "status":
		return string(o.Status), true
	case "coupon":
		return o.Coupon, true
	case "network":
		return c.Network, true
	case "conversion_id":
		return c.ConversionID, true
	case "event_id":
		return EventID(c), true
	case "timestamp":
		return strconv.FormatInt(c.Time.Unix(), 10), true
	case "timestamp_ms":
		return strconv.FormatInt(c.Time.UnixMilli(), 10), true
	case "time_iso":
		return c.Time.UTC().Format(time.RFC3339), true
	case "click_time":
		return strconv.FormatInt(c.Touchpoint.CapturedAt.Unix(), 10), true
	case "ip":
		return c.Touchpoint.ClientIP, true
	case "user_agent":
		return c.Touchpoint.UserAgent, true
	case "landing_url":
		return c.Touchpoint.LandingURL, true
	case "test":
		if c.Test {
			return "1", true
		}
		return "0", true
	}
	for _, p := range record.SubParams {
		if token == p {
			return c.Touchpoint.Subs[p], true
		}
	}
	if name, ok := strings.CutPrefix(token, ValuePrefix); ok && order.ValidValueName(name) {
		// A value that the rule, webhook or endpoint that saw the order
		// did not set renders empty, as an absent sub parameter does.
		return o.Values[name], true
	}
	return "", false
}

// ValuePrefix starts the tokens of per-offer values: {value.offer_id} is
// the order's value named offer_id (order.Order.Values), set by the
// conversion rule, webhook or endpoint that saw the order.
const ValuePrefix = "value."

// Tokens lists every token a template may use besides the sub parameters
// (record.SubParams) and the per-offer values ({value.<name>}, see
// ValuePrefix).
var Tokens = []string{
	"click_id", "order_id", "amount", "amount_minor", "currency", "event", "status", "coupon",
	"network", "conversion_id", "event_id", "timestamp", "timestamp_ms", "time_iso", "click_time",
	"ip", "user_agent", "landing_url", "test",
}

// numericTokens may stand outside quotes in a JSON body.
var numericTokens = map[string]bool{
	"amount": true, "amount_minor": true, "timestamp": true, "timestamp_ms": true, "click_time": true, "test": true,
}

func knownToken(t string) bool {
	_, ok := value(&record.Postback{}, t)
	return ok
}
