// Package detect reads an order from a confirmation page's response after it
// has streamed to the client: it holds the capped tee that copies a prefix of
// the response, the content decoding of that prefix, and the sources that
// pull an order ID, amount, currency and coupon out of it (GA4 data layer and
// gtag calls, Magento's GA4 init JSON, schema.org JSON-LD, a JSON API body, a
// regular expression, response headers).
//
// It knows nothing of Caddy: the module wraps the response writer, feeds a
// Capture, decodes its bytes with Decode and calls Extract on the Page.
package detect

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Page is a response as seen by the proxy: status, headers, and a (possibly
// truncated) body prefix, already decoded.
//
// Sources only read a Page. A Page caches the location of its <script>
// elements after the first HTML source scans it, so it is not safe for
// concurrent use; run the sources of one Page from one goroutine.
type Page struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool

	// scan caches the script elements found in Body so that several HTML
	// sources on one page tokenize it once.
	scan *scanResult
}

// Fields is what sources found; "" means not found.
type Fields struct {
	OrderID  string
	Amount   string
	Currency string
	Coupon   string
	// AmountMinor reports that Amount is in the currency's minor units
	// (cents); it travels with Amount when fields are merged.
	AmountMinor bool
	Items       []order.Item
	// Customer is what the page says of its customer, already hashed
	// (order.NewCustomer); nil when it says nothing.
	Customer *order.Customer
}

// Source reads fields from a page.
type Source interface {
	// Name identifies the source in errors and logs ("ga4", "json", …).
	Name() string
	// Extract returns what the source found. Nothing found is not an
	// error: it returns empty Fields and nil. An error means the source
	// saw something it should understand but could not read (a body that
	// is not JSON, a script that does not parse) and found nothing else.
	Extract(p *Page) (Fields, error)
}

// complete reports whether every order field is set, so later sources have
// nothing left to add. The customer is not awaited: few pages give one.
func (f *Fields) complete() bool {
	return f.OrderID != "" && f.Amount != "" && f.Currency != "" && f.Coupon != "" && len(f.Items) > 0
}

// merge fills the fields of f that are empty from g.
func (f *Fields) merge(g Fields) {
	if f.OrderID == "" {
		f.OrderID = g.OrderID
	}
	if f.Amount == "" && g.Amount != "" {
		f.Amount, f.AmountMinor = g.Amount, g.AmountMinor
	}
	if f.Currency == "" {
		f.Currency = g.Currency
	}
	if f.Coupon == "" {
		f.Coupon = g.Coupon
	}
	if len(f.Items) == 0 {
		f.Items = g.Items
	}
	f.Customer = f.Customer.Merge(g.Customer)
}

// IsZero reports whether no source found anything.
func (f Fields) IsZero() bool {
	return f.OrderID == "" && f.Amount == "" && f.Currency == "" && f.Coupon == "" && len(f.Items) == 0
}

// Extract runs the sources in order and merges what they find: for each
// field the first source that found it wins, so a rule can take the order ID
// from one source and the amount from another. Errors from sources are
// returned (each prefixed with the source's name) but do not stop the others.
// Sources after the point where every field is set are not run.
func Extract(p *Page, sources []Source) (Fields, []error) {
	var (
		out  Fields
		errs []error
	)
	for _, s := range sources {
		if out.complete() {
			break
		}
		f, err := s.Extract(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
		out.merge(f)
	}
	return out, errs
}

// Order builds an order from the fields: the order ID, the amount parsed
// exactly (order.ParseDecimal, or order.ParseMinor when AmountMinor is set),
// the currency upper-cased or defaultCurrency when none or an invalid one was
// found, the coupon, the items and the hashed customer. Status is approved; the caller may
// override it, and sets Source.
//
// What cannot be read does not fail the order: an unparseable amount leaves
// HasAmount false, an invalid currency falls back to defaultCurrency, and
// each is described in Problems, so the conversion is still recorded and the
// problem logged.
func (f Fields) Order(event, defaultCurrency string) order.Order {
	o := order.Order{
		Event:  event,
		ID:     strings.TrimSpace(f.OrderID),
		Coupon: strings.TrimSpace(f.Coupon),
		Status: order.StatusApproved,
	}
	if len(f.Items) > 0 {
		o.Items = append([]order.Item(nil), f.Items...)
	}
	o.Customer = f.Customer
	if o.ID == "" {
		o.Problems = append(o.Problems, "no order ID found")
	}

	cur := strings.TrimSpace(f.Currency)
	switch n := order.NormalizeCurrency(cur); {
	case n != "":
		o.Currency = n
	case cur != "":
		o.Currency = order.NormalizeCurrency(defaultCurrency)
		o.Problems = append(o.Problems, fmt.Sprintf("invalid currency %q, using default %q", cur, o.Currency))
	default:
		o.Currency = order.NormalizeCurrency(defaultCurrency)
	}

	if f.Amount != "" {
		var (
			d   order.Decimal
			err error
		)
		if f.AmountMinor {
			d, err = order.ParseMinor(f.Amount, o.Currency)
		} else {
			d, err = order.ParseDecimal(f.Amount)
		}
		if err != nil {
			o.Problems = append(o.Problems, fmt.Sprintf("amount not recorded: %v", err))
		} else {
			o.Amount, o.HasAmount = d, true
		}
		if o.Currency == "" {
			o.Problems = append(o.Problems, "amount has no currency")
		}
	}
	return o
}
