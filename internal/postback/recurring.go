package postback

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// recurringPresets are the presets of recurring-commission programs: they
// pay an affiliate on every payment of a customer the affiliate referred,
// so a subscription's rebills (order.EventRebill) are theirs for the
// subscription's lifetime. Their APIs do not drop repeated requests; the
// outbox's one delivery per (network, event, order) does.
var recurringPresets = map[string]bool{
	"rewardful":     true,
	"firstpromoter": true,
	"tapfiliate":    true,
}

// Recurring reports whether a preset pays recurring commissions, so that
// the conversion layer credits a subscription's rebills to it for the
// subscription's lifetime by default.
func Recurring(preset string) bool {
	return recurringPresets[preset]
}

// orderAmountMinor is an order's amount in the minor units of its currency
// (whole units for zero-decimal currencies), which the recurring programs
// take; a program cannot pay a commission on a sale without one.
func orderAmountMinor(preset string, c *record.Postback) (int64, error) {
	o := &c.Order
	if !o.HasAmount || o.Currency == "" {
		return 0, fmt.Errorf("%w: %s pays commissions on an amount, and this order has none (or no currency)", ErrRejected, preset)
	}
	return o.Amount.Minor(o.Currency), nil
}

// messageReason reads an API's {"message": …} error answer, else a snippet.
func messageReason(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		if m := strings.TrimSpace(e.Message); m != "" {
			return m
		}
		if m := strings.TrimSpace(e.Error); m != "" {
			return m
		}
	}
	return snippet(body)
}

// classifyAPI reads a JSON API's answer by its status, with the message as
// the reason.
func classifyAPI(status int, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered {
		return o, ""
	}
	if status == http.StatusUnprocessableEntity || status == http.StatusBadRequest {
		return o, "invalid: " + messageReason(body)
	}
	return o, messageReason(body)
}
