package detect

import (
	"bytes"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/tidwall/gjson"
)

// JSONLD reads a schema.org Order from <script type="application/ld+json">
// elements: the document itself, an element of a top-level array, a member
// of "@graph", or an object nested in another node (mainEntity). It reads
// orderNumber; price, else totalPaymentDue's price (or value), else the price
// of a single acceptedOffer; priceCurrency from the same places; discountCode
// as the coupon; and the accepted offers as items.
type JSONLD struct{}

// Name returns "jsonld".
func (JSONLD) Name() string { return "jsonld" }

var orderBytes = []byte("Order")

// maxLDDepth bounds the search for an Order node inside a JSON-LD document.
const maxLDDepth = 8

// Extract returns the first Order found.
func (JSONLD) Extract(p *Page) (Fields, error) {
	if !bytes.Contains(p.Body, orderBytes) {
		return Fields{}, nil
	}
	var err error
	for _, s := range p.scripts() {
		text := p.text(s)
		if s.kind != kindLDJSON || !bytes.Contains(text, orderBytes) {
			continue
		}
		doc := validJSON(text)
		if doc == nil {
			err = ErrBadJSON
			continue
		}
		o := findOrder(gjson.ParseBytes(doc), maxLDDepth)
		if !o.Exists() {
			continue
		}
		if f := ldFields(o); !f.IsZero() {
			return f, nil
		}
	}
	return Fields{}, err
}

func ldFields(o gjson.Result) Fields {
	offers := o.Get("acceptedOffer")
	single := offers
	if offers.IsArray() {
		arr := offers.Array()
		single = gjson.Result{}
		if len(arr) == 1 {
			single = arr[0]
		}
	}
	due := o.Get("totalPaymentDue")
	f := Fields{
		OrderID:  scalar(o.Get("orderNumber")),
		Amount:   firstScalar(o.Get("price"), due.Get("price"), due.Get("value"), single.Get("price")),
		Currency: firstScalar(o.Get("priceCurrency"), due.Get("priceCurrency"), due.Get("currency"), single.Get("priceCurrency")),
		Coupon:   scalar(o.Get("discountCode")),
	}
	if f.Currency == "" && offers.IsArray() {
		f.Currency = scalar(offers.Get("0.priceCurrency"))
	}
	addOffer := func(v gjson.Result) bool {
		if !v.IsObject() {
			return true
		}
		prod := v.Get("itemOffered")
		it := order.Item{
			ID:       firstScalar(prod.Get("sku"), prod.Get("productID"), v.Get("sku")),
			Name:     scalar(prod.Get("name")),
			Quantity: quantity(firstScalar(v.Get("eligibleQuantity.value"), v.Get("eligibleQuantity"))),
		}
		it.Price, _ = order.ParseDecimal(scalar(v.Get("price")))
		f.Items = append(f.Items, it)
		return len(f.Items) < maxItems
	}
	if offers.IsArray() {
		offers.ForEach(func(_, v gjson.Result) bool { return addOffer(v) })
	} else {
		addOffer(offers)
	}
	return f
}

func firstScalar(rs ...gjson.Result) string {
	for _, r := range rs {
		if s := scalar(r); s != "" {
			return s
		}
	}
	return ""
}

// findOrder returns the first node whose @type is Order, depth-first in
// document order.
func findOrder(r gjson.Result, depth int) gjson.Result {
	if depth < 0 {
		return gjson.Result{}
	}
	if r.IsObject() && isOrderType(r.Get("@type")) {
		return r
	}
	if !r.IsObject() && !r.IsArray() {
		return gjson.Result{}
	}
	var found gjson.Result
	r.ForEach(func(_, v gjson.Result) bool {
		found = findOrder(v, depth-1)
		return !found.Exists()
	})
	return found
}

func isOrderType(t gjson.Result) bool {
	if t.IsArray() {
		for _, v := range t.Array() {
			if isOrderType(v) {
				return true
			}
		}
		return false
	}
	s := t.String()
	// "Order", "schema:Order", "http://schema.org/Order", "https://schema.org/Order"
	return s == "Order" || strings.HasSuffix(s, ":Order") || strings.HasSuffix(s, "/Order")
}
