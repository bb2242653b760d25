package detect

import (
	"bytes"
	"errors"

	"github.com/tidwall/gjson"
)

// Magento reads the order from the success page of Magento 2 / Adobe
// Commerce with the core GA4 module (Magento_GoogleGtag): a
//
//	<script type="text/x-magento-init">
//	{"*": {"Magento_GoogleGtag/js/google-analytics": {…, "ordersTrackingData": {
//	    "orders": [{"transaction_id": "000000042", "value": "1,234.50", "currency": "EUR", "coupon": "X", …}],
//	    "products": [{"item_id": "MH01", "item_name": "…", "price": 52, "quantity": 1, …}]}}}}
//	</script>
//
// element. The first order is read (a multi-address checkout lists
// several). value comes from PHP's number_format, so amounts from 1000 up are
// strings with a comma thousands separator; order.ParseDecimal reads them.
// Core Magento writes the component's JSON through escapeJs, which leaves it
// \uXXXX-escaped; that, HTML-escaped and plain JSON are all read.
type Magento struct{}

// Name returns "magento".
func (Magento) Name() string { return "magento" }

var ordersTrackingData = []byte("ordersTrackingData")

// ErrBadJSON is wrapped by errors for JSON a source could not read.
var ErrBadJSON = errors.New("invalid JSON")

// Extract returns the first order of the page's ordersTrackingData.
func (Magento) Extract(p *Page) (Fields, error) {
	if !bytes.Contains(p.Body, ordersTrackingData) {
		return Fields{}, nil
	}
	var err error
	for _, s := range p.scripts() {
		text := p.text(s)
		if s.kind != kindMagentoInit || !bytes.Contains(text, ordersTrackingData) {
			continue
		}
		doc := validJSON(text)
		if doc == nil {
			err = ErrBadJSON
			continue
		}
		otd := findKey(gjson.ParseBytes(doc), "ordersTrackingData", 4)
		if !otd.Exists() {
			continue
		}
		o := otd.Get("orders.0")
		f := Fields{
			OrderID:  scalar(o.Get("transaction_id")),
			Amount:   scalar(o.Get("value")),
			Currency: scalar(o.Get("currency")),
			Coupon:   scalar(o.Get("coupon")),
			Items:    jsonItems(otd.Get("products"), "item_id", "item_name"),
		}
		if f.OrderID != "" || f.Amount != "" {
			return f, nil
		}
	}
	if err != nil {
		return Fields{}, err
	}
	return Fields{}, nil
}

// findKey returns the value of the first object member named key, searching
// objects breadth-first down to depth levels (the component config sits
// under a selector such as "*", its name, and may move in themes).
func findKey(r gjson.Result, key string, depth int) gjson.Result {
	if depth < 0 || !r.IsObject() {
		return gjson.Result{}
	}
	if v := r.Get(gjsonEscape(key)); v.Exists() {
		return v
	}
	var found gjson.Result
	r.ForEach(func(_, v gjson.Result) bool {
		found = findKey(v, key, depth-1)
		return !found.Exists()
	})
	return found
}

// gjsonEscape escapes gjson path syntax in a literal key.
func gjsonEscape(key string) string {
	var b []byte
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%', '(', ')', '[', ']', '{', '}', ',', ':', '"':
			b = append(b, '\\')
		}
		b = append(b, key[i])
	}
	return string(b)
}
