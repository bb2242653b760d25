package detect

import (
	"bytes"
	"fmt"

	"github.com/tidwall/gjson"
)

// JSON reads fields from a JSON response body, as a single-page app's
// order-confirmation API returns it. Each field is a gjson path
// (https://github.com/tidwall/gjson/blob/master/SYNTAX.md), such as
// "order.id" or "data.orders.0.total"; an empty path is not read. Numbers are
// read with their exact digits.
type JSON struct {
	OrderID  string
	Amount   string
	Currency string
	Coupon   string
	// AmountMinor says the amount is in the currency's minor units (cents),
	// as Stripe-style APIs send it.
	AmountMinor bool
}

// Name returns "json".
func (JSON) Name() string { return "json" }

// Extract reads the configured paths. A body that is not valid JSON is an
// error, unless it was truncated by the capture cap: then whatever the
// paths reach in the prefix is still returned.
func (j JSON) Extract(p *Page) (Fields, error) {
	body := bytes.TrimSpace(p.Body)
	if len(body) == 0 {
		return Fields{}, nil
	}
	valid := gjson.ValidBytes(body)
	if !valid && !p.Truncated {
		return Fields{}, fmt.Errorf("response body: %w", ErrBadJSON)
	}
	get := func(path string) string {
		if path == "" {
			return ""
		}
		return scalar(gjson.GetBytes(body, path))
	}
	f := Fields{
		OrderID:  get(j.OrderID),
		Amount:   get(j.Amount),
		Currency: get(j.Currency),
		Coupon:   get(j.Coupon),
	}
	if f.Amount != "" {
		f.AmountMinor = j.AmountMinor
	}
	if !valid && f.IsZero() {
		return Fields{}, fmt.Errorf("truncated response body: %w", ErrBadJSON)
	}
	return f, nil
}
