package detect

import "strings"

// Header reads fields from response headers the application sets for the
// purpose (X-Order-Id: 1042). Each field is a header name; an empty name is
// not read.
type Header struct {
	OrderID  string
	Amount   string
	Currency string
	Coupon   string
	// AmountMinor says the amount is in the currency's minor units.
	AmountMinor bool
}

// Name returns "header".
func (Header) Name() string { return "header" }

// Extract reads the configured headers.
func (h Header) Extract(p *Page) (Fields, error) {
	get := func(name string) string {
		if name == "" || p.Header == nil {
			return ""
		}
		return strings.TrimSpace(p.Header.Get(name))
	}
	f := Fields{
		OrderID:  get(h.OrderID),
		Amount:   get(h.Amount),
		Currency: get(h.Currency),
		Coupon:   get(h.Coupon),
	}
	if f.Amount != "" {
		f.AmountMinor = h.AmountMinor
	}
	return f, nil
}
