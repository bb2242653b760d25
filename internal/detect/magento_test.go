package detect

import (
	"errors"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// plainMagentoInit is the component JSON as third-party themes and older
// releases print it: plain JSON inside the x-magento-init script.
const plainMagentoInit = `<html><body><script type="text/x-magento-init">
{"*": {"Magento_GoogleGtag/js/google-analytics": {"isCookieRestrictionModeEnabled": false, "currentWebsite": 1,
 "cookieName": "user_allowed_save_cookie", "pageTrackingData": {"optPageUrl": "", "measurementId": "G-XYZ"},
 "ordersTrackingData": {"products": [{"index": 1, "item_id": "WS12-M-Orange", "item_name": "Radiant Tee", "price": 22, "quantity": 3}],
  "orders": [{"transaction_id": "000000007", "affiliation": "Main Website Store", "value": "66.00", "tax": "0.00", "shipping": "15.00", "currency": "USD"}]},
 "googleAnalyticsAvailable": true}}}
</script></body></html>`

func TestMagento(t *testing.T) {
	tests := []struct {
		name    string
		page    *Page
		want    Fields
		wantErr error
	}{
		{
			name: "luma success page, escapeJs-escaped JSON with a thousands separator",
			page: testdataPage(t, "magento-success.html"),
			want: Fields{OrderID: "000000042", Amount: "1,234.50", Currency: "EUR", Coupon: "H20", Items: []order.Item{
				{ID: "24-MB02", Name: `Fusion Backpack "Pro"`, Price: dec(t, "1184.5"), Quantity: 1},
				{ID: "24-UG06", Name: "Affirm Water Bottle – Café", Price: dec(t, "7"), Quantity: 2},
			}},
		},
		{
			name: "plain JSON",
			page: htmlPage(plainMagentoInit),
			want: Fields{OrderID: "000000007", Amount: "66.00", Currency: "USD", Items: []order.Item{
				{ID: "WS12-M-Orange", Name: "Radiant Tee", Price: dec(t, "22"), Quantity: 3},
			}},
		},
		{
			name: "HTML-escaped JSON",
			page: htmlPage(`<script type="text/x-magento-init">{&quot;*&quot;: {&quot;Magento_GoogleGtag/js/google-analytics&quot;: {&quot;ordersTrackingData&quot;: {&quot;orders&quot;: [{&quot;transaction_id&quot;: &quot;000000008&quot;, &quot;value&quot;: &quot;2,000.00&quot;, &quot;currency&quot;: &quot;GBP&quot;}]}}}}</script>`),
			want: Fields{OrderID: "000000008", Amount: "2,000.00", Currency: "GBP"},
		},
		{
			name: "a page that is not a success page has empty tracking data",
			page: htmlPage(`<script type="text/x-magento-init">{"*": {"Magento_GoogleGtag/js/google-analytics": {"ordersTrackingData": [], "pageTrackingData": {"measurementId": "G-1"}}}}</script>`),
		},
		{
			name: "ordersTrackingData outside an x-magento-init script is ignored",
			page: htmlPage(`<script>var ordersTrackingData = {"orders": [{"transaction_id": "1"}]};</script>`),
		},
		{
			name:    "broken JSON",
			page:    htmlPage(`<script type="text/x-magento-init">{"*": {"Magento_GoogleGtag/js/google-analytics": {"ordersTrackingData": {"orders": [{"transaction_id": "1",</script>`),
			wantErr: ErrBadJSON,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Magento{}.Extract(tt.page)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			checkFields(t, got, tt.want)
		})
	}
}

func TestMagentoOrderAmount(t *testing.T) {
	f, err := Magento{}.Extract(testdataPage(t, "magento-success.html"))
	if err != nil {
		t.Fatal(err)
	}
	o := f.Order("purchase", "USD")
	if !o.HasAmount || o.Amount.Fixed(2) != "1234.50" || o.Currency != "EUR" || o.ID != "000000042" || len(o.Problems) > 0 {
		t.Fatalf("order = %+v", o)
	}
}

func TestUnescapeUnicode(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\u007B\u0022a\u0022\u003A1\u007D`, `{"a":1}`},
		{`\u0022caf\u00E9\u0022`, `"café"`},
		// escapeJs writes a non-BMP character as eight hex digits after one \u.
		{`\uD83DDE00`, "😀"},
		{`\uD83D\uDE00`, "😀"},
		{`\u005Cu00e9`, `\u00e9`}, // decoded once only
		{`a\ub`, `a\ub`},
		{`\u12`, `\u12`},
	}
	for _, tt := range tests {
		if got := string(unescapeUnicode([]byte(tt.in))); got != tt.want {
			t.Errorf("unescapeUnicode(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzMagento runs the Magento source over arbitrary x-magento-init text.
func FuzzMagento(f *testing.F) {
	f.Add(`{"*":{"Magento_GoogleGtag/js/google-analytics":{"ordersTrackingData":{"orders":[{"transaction_id":"1","value":"1,234.50","currency":"EUR"}],"products":[{"item_id":"a","price":1,"quantity":1}]}}}}`)
	f.Add(`{"*":{"Magento_GoogleGtag/js/google-analytics":\u007B\u0022ordersTrackingData\u0022\u003A\u007B\u0022orders\u0022\u003A\u005B\u007B\u0022transaction_id\u0022\u003A\u00221\u0022\u007D\u005D\u007D\u007D}}`)
	f.Add(`{&quot;ordersTrackingData&quot;:{&quot;orders&quot;:[{&quot;value&quot;:&quot;1&quot;}]}}`)
	f.Add(`\uD83D ordersTrackingData \u`)
	f.Fuzz(func(t *testing.T, s string) {
		p := htmlPage(`<script type="text/x-magento-init">` + s + `</script>`)
		if got, err := (Magento{}).Extract(p); err != nil && !got.IsZero() {
			t.Fatalf("fields %+v with error %v", got, err)
		}
	})
}
