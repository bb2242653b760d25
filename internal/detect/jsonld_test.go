package detect

import (
	"errors"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// gmailOrder is Google's Gmail markup example for an Order.
const gmailOrder = `{"@context":"http://schema.org","@type":"Order","merchant":{"@type":"Organization","name":"Amazon.com"},
 "orderNumber":"123-4567890-1234567","priceCurrency":"USD","price":"29.99",
 "acceptedOffer":{"@type":"Offer","itemOffered":{"@type":"Product","name":"Google Chromecast"},
   "price":"29.99","priceCurrency":"USD","eligibleQuantity":{"@type":"QuantitativeValue","value":"1"}},
 "orderStatus":"http://schema.org/OrderProcessing"}`

func ldPage(docs ...string) *Page {
	body := `<!DOCTYPE html><html><head><title>Your order</title>`
	for _, d := range docs {
		body += "\n<script type=\"application/ld+json\">\n" + d + "\n</script>"
	}
	return htmlPage(body + "</head><body><h1>Thanks for your order</h1></body></html>")
}

func TestJSONLD(t *testing.T) {
	chromecast := []order.Item{{Name: "Google Chromecast", Price: dec(t, "29.99"), Quantity: 1}}
	tests := []struct {
		name    string
		page    *Page
		want    Fields
		wantErr error
	}{
		{name: "plain Order", page: ldPage(gmailOrder),
			want: Fields{OrderID: "123-4567890-1234567", Amount: "29.99", Currency: "USD", Items: chromecast}},
		{name: "after an unrelated document", page: ldPage(`{"@context":"https://schema.org","@type":"Organization","name":"Shop"}`, gmailOrder),
			want: Fields{OrderID: "123-4567890-1234567", Amount: "29.99", Currency: "USD", Items: chromecast}},
		{name: "in @graph", page: ldPage(`{"@context":"https://schema.org","@graph":[{"@type":"WebPage","name":"Order received"},
			{"@type":"Order","orderNumber":1042,"discountCode":"SPRING","totalPaymentDue":{"@type":"PriceSpecification","price":"1,234.50","priceCurrency":"EUR"}}]}`),
			want: Fields{OrderID: "1042", Amount: "1,234.50", Currency: "EUR", Coupon: "SPRING"}},
		{name: "in a top-level array, typed as a URL", page: ldPage(`[{"@type":"BreadcrumbList"},{"@type":["https://schema.org/Order"],"orderNumber":"A-1",
			"totalPaymentDue":{"@type":"MonetaryAmount","value":12,"currency":"CAD"}}]`),
			want: Fields{OrderID: "A-1", Amount: "12", Currency: "CAD"}},
		{name: "nested as mainEntity, price from the only offer", page: ldPage(`{"@type":"WebPage","mainEntity":{"@type":"Order","orderNumber":"N-5",
			"acceptedOffer":[{"@type":"Offer","price":7.5,"priceCurrency":"GBP","itemOffered":{"@type":"Product","name":"Mug","sku":"MUG-1"},"eligibleQuantity":{"value":2}}]}}`),
			want: Fields{OrderID: "N-5", Amount: "7.5", Currency: "GBP", Items: []order.Item{{ID: "MUG-1", Name: "Mug", Price: dec(t, "7.5"), Quantity: 2}}}},
		{name: "several offers and no total: no amount guessed", page: ldPage(`{"@type":"Order","orderNumber":"M-2",
			"acceptedOffer":[{"price":"1","priceCurrency":"USD"},{"price":"2","priceCurrency":"USD"}]}`),
			want: Fields{OrderID: "M-2", Currency: "USD", Items: []order.Item{{Price: dec(t, "1")}, {Price: dec(t, "2")}}}},
		{name: "no Order", page: ldPage(`{"@context":"https://schema.org","@type":"Product","name":"Order book"}`)},
		{name: "broken JSON", page: ldPage(`{"@type":"Order","orderNumber":"X"`), wantErr: ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JSONLD{}.Extract(tt.page)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			checkFields(t, got, tt.want)
		})
	}
}

// FuzzJSONLD runs the JSON-LD source over arbitrary documents.
func FuzzJSONLD(f *testing.F) {
	f.Add(gmailOrder)
	f.Add(`{"@graph":[{"@type":"Order","orderNumber":1,"totalPaymentDue":{"price":"1,0"}}]}`)
	f.Add(`[[[[[[[[[[[[{"@type":"Order"}]]]]]]]]]]]]`)
	f.Add(`{"@type":"Order","acceptedOffer":{"itemOffered":7,"eligibleQuantity":"x"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		JSONLD{}.Extract(ldPage(s))
	})
}
