package detect

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

func inScript(js string) string {
	return "<!doctype html><html><head><title>Thanks</title></head><body><h1>Thank you</h1>\n<script>\n" + js + "\n</script>\n</body></html>"
}

func TestGA4(t *testing.T) {
	tests := []struct {
		name    string
		page    *Page
		event   string
		want    Fields
		wantErr error
	}{
		{
			name: "woocommerce thank-you page",
			page: testdataPage(t, "woocommerce-thankyou.html"),
			want: Fields{OrderID: "727", Amount: "1249.90", Currency: "USD", Coupon: "WELCOME10", Items: []order.Item{
				{ID: "GRD-COM-01", Name: "Commercial espresso grinder", Price: dec(t, "1199"), Quantity: 1},
				{ID: "ETH-GUJI-250", Name: "Ethiopia Guji – 250g", Price: dec(t, "18"), Quantity: 2},
			}},
		},
		{
			name: "gtag purchase after a view_item",
			page: testdataPage(t, "gtag-purchase.html"),
			want: Fields{OrderID: "T_12345", Amount: "12.00", Currency: "USD", Coupon: "socksSale", Items: []order.Item{
				{ID: "SKU_12345", Name: "Socks", Price: dec(t, "4"), Quantity: 3},
			}},
		},
		{
			name: "ecommerce null clears a view_item before the purchase",
			page: htmlPage(inScript(`
				dataLayer.push({event: 'view_item', ecommerce: {currency: 'GBP', value: 5, items: [{item_id: 'A'}]}});
				dataLayer.push({ecommerce: null});
				dataLayer.push({event: 'purchase', ecommerce: {transaction_id: 'X1', value: '10.50'}});`)),
			want: Fields{OrderID: "X1", Amount: "10.50"},
		},
		{
			name: "without the clear, GTM's merged ecommerce object carries the earlier currency",
			page: htmlPage(inScript(`
				dataLayer.push({event: 'view_item', ecommerce: {currency: 'GBP', value: 5, items: [{item_id: 'A'}]}});
				dataLayer.push({event: 'purchase', ecommerce: {transaction_id: 'X1', value: '10.50', items: [{item_id: 'B'}]}});`)),
			want: Fields{OrderID: "X1", Amount: "10.50", Currency: "GBP", Items: []order.Item{{ID: "B"}}},
		},
		{
			name: "single quotes, quoted and unquoted keys, trailing commas, numbers as strings",
			page: htmlPage(inScript(`dataLayer.push({'event':"purchase",'ecommerce':{"transaction_id":1042,'value':'49.00',currency:'usd',items:[{'item_id':'S1',price:'545.00',quantity:'1',},],},});`)),
			want: Fields{OrderID: "1042", Amount: "49.00", Currency: "usd", Items: []order.Item{{ID: "S1", Price: dec(t, "545"), Quantity: 1}}},
		},
		{
			name: "the last purchase wins",
			page: htmlPage(inScript(`dataLayer.push({event:'purchase',ecommerce:{transaction_id:'T1',value:1}});`) +
				inScript(`dataLayer.push({ecommerce:null}); dataLayer.push({event:'purchase',ecommerce:{transaction_id:'T2',value:2}});`)),
			want: Fields{OrderID: "T2", Amount: "2"},
		},
		{
			name: "universal analytics actionField shape",
			page: htmlPage(inScript(`
				dataLayer = [];
				dataLayer.push({
				  'ecommerce': {
				    'currencyCode': 'EUR',
				    'purchase': {
				      'actionField': {'id': 'T12345', 'affiliation': 'Online Store', 'revenue': '35.43', 'tax':'4.90', 'shipping': '5.99', 'coupon': 'SUMMER_SALE'},
				      'products': [{'name': 'Triblend Android T-Shirt', 'id': '12345', 'price': '15.25', 'quantity': 1},
				                   {'name': 'Donut Friday Scented T-Shirt', 'id': '67890', 'price': '33.75', 'quantity': 1}]
				    }
				  }
				});`)),
			want: Fields{OrderID: "T12345", Amount: "35.43", Currency: "EUR", Coupon: "SUMMER_SALE", Items: []order.Item{
				{ID: "12345", Name: "Triblend Android T-Shirt", Price: dec(t, "15.25"), Quantity: 1},
				{ID: "67890", Name: "Donut Friday Scented T-Shirt", Price: dec(t, "33.75"), Quantity: 1},
			}},
		},
		{
			name:  "configured event name",
			page:  htmlPage(inScript(`dataLayer.push({event: 'GA4_purchase', ecommerce: {transaction_id: 'G1', value: 9.5, currency: 'CHF'}});`)),
			event: "GA4_purchase",
			want:  Fields{OrderID: "G1", Amount: "9.5", Currency: "CHF"},
		},
		{
			name: "other event names are not purchases by default",
			page: htmlPage(inScript(`dataLayer.push({event: 'GA4_purchase', ecommerce: {transaction_id: 'G1', value: 9.5}});`)),
		},
		{
			name: "GTM4WP variable then push",
			page: htmlPage(inScript(`var dataLayer_content = {"pagePostType":"page","event":"purchase","ecommerce":{"currency":"EUR","transaction_id":"2219","affiliation":"","value":59.8,"tax":9.55,"shipping":4.9,"coupon":"","items":[{"item_id":"714","item_name":"Hoodie","price":27.45,"quantity":2}]}};
				dataLayer.push( dataLayer_content );`)),
			want: Fields{OrderID: "2219", Amount: "59.8", Currency: "EUR", Items: []order.Item{{ID: "714", Name: "Hoodie", Price: dec(t, "27.45"), Quantity: 2}}},
		},
		{
			name: "non-literal values are unknown, not guessed",
			page: htmlPage(inScript(`var total = getTotal();
				dataLayer.push({event: 'purchase', ecommerce: {transaction_id: 'N1', value: total, currency: 'USD', coupon: 'A' + 'B'}});`)),
			want: Fields{OrderID: "N1", Currency: "USD"},
		},
		{
			name: "a purchase with neither a literal ID nor amount is not a find",
			page: htmlPage(inScript(`dataLayer.push({event: 'purchase', ecommerce: {transaction_id: order.id, value: order.total, currency: 'USD'}});`)),
		},
		{
			name: "window dataLayer forms, inside a callback",
			page: htmlPage(inScript(`document.addEventListener('DOMContentLoaded', function () {
				  (window.dataLayer = window.dataLayer || []).push({event: 'view_cart'});
				  window['dataLayer'].push({event: 'purchase', ecommerce: {transaction_id: '\x54-\u0031', value: -0.5e1, currency: ` + "`NOK`" + `}});
				});`)),
			want: Fields{OrderID: "T-1", Amount: "-5", Currency: "NOK"},
		},
		{
			name: "initial dataLayer array",
			page: htmlPage(inScript(`var dataLayer = [{event: 'purchase', ecommerce: {transaction_id: 'A-9', value: 0x10}}];`)),
			want: Fields{OrderID: "A-9", Amount: "16"},
		},
		{
			name: "purchase parameters beside the event",
			page: htmlPage(inScript(`dataLayer.push({event: 'purchase', transaction_id: 'P-2', value: '19.99', currency: 'AUD'});`)),
			want: Fields{OrderID: "P-2", Amount: "19.99", Currency: "AUD"},
		},
		{
			name: "only view_item on the page",
			page: htmlPage(inScript(`dataLayer.push({event: 'view_item', ecommerce: {currency: 'USD', value: 30, items: [{item_id: 'SKU_1'}]}});`)),
		},
		{
			name: "a commented-out script and JSON scripts are not run",
			page: htmlPage(`<!-- <script>dataLayer.push({event:'purchase',ecommerce:{transaction_id:'C1'}})</script> -->
				<script type="application/json">{"event":"purchase","ecommerce":{"transaction_id":"J1"}}</script>`),
		},
		{
			name:    "broken javascript is reported",
			page:    htmlPage(inScript(`dataLayer.push({event: 'purchase', ecommerce: {transaction_id: 'T9', value: }});`)),
			wantErr: ErrSyntax,
		},
		{
			name: "a broken script does not hide a good one",
			page: htmlPage(inScript(`dataLayer.push({event: 'purchase', ecommerce: {transaction_id: 'T9', value: }});`) +
				inScript(`gtag('event', 'purchase', {transaction_id: 'T10', value: 3});`)),
			want: Fields{OrderID: "T10", Amount: "3"},
		},
		{
			name: "a truncated page cuts the purchase script",
			page: func() *Page {
				p := testdataPage(t, "woocommerce-thankyou.html")
				i := strings.Index(string(p.Body), "value: 1249.90")
				p.Body, p.Truncated = p.Body[:i], true
				return p
			}(),
			wantErr: ErrSyntax,
		},
		{
			name: "upper-case tags and a module script",
			page: htmlPage(`<HTML><BODY><SCRIPT TYPE="module">gtag('event','purchase',{transaction_id:'M1',value:1})</SCRIPT></BODY></HTML>`),
			want: Fields{OrderID: "M1", Amount: "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := string(tt.page.Body)
			got, err := GA4{Event: tt.event}.Extract(tt.page)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.want.Items == nil && got.Items != nil && tt.want.OrderID == "" && tt.want.Amount == "" {
				t.Errorf("unexpected items %+v", got.Items)
			}
			checkFields(t, got, tt.want)
			if string(tt.page.Body) != before {
				t.Error("extraction modified the page body")
			}
		})
	}
}

func TestGA4WooCommerceOrder(t *testing.T) {
	f, err := GA4{}.Extract(testdataPage(t, "woocommerce-thankyou.html"))
	if err != nil {
		t.Fatal(err)
	}
	o := f.Order("purchase", "EUR")
	if o.ID != "727" || !o.HasAmount || o.Amount.Fixed(2) != "1249.90" || o.Currency != "USD" || o.Coupon != "WELCOME10" || len(o.Problems) != 0 {
		t.Fatalf("order = %+v", o)
	}
}

func TestJSUnquote(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`'plain'`, "plain", true},
		{`"a\"b\\c\/d"`, `a"b\c/d`, true},
		{`'caf\u00e9 \u{1F600} \uD83D\uDE00'`, "café 😀 😀", true},
		{`'\x41\n\t'`, "A\n\t", true},
		{"`tmpl`", "tmpl", true},
		{`'bad \u12'`, "", false},
		{`'dangling \`, "", false},
		{`'mismatched"`, "", false},
	}
	for _, tt := range tests {
		got, ok := jsUnquote([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("jsUnquote(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzGA4 feeds arbitrary script text (and whole bodies) to the GA4 source:
// it must never panic, whatever the JavaScript.
func FuzzGA4(f *testing.F) {
	f.Add(`dataLayer.push({event:'purchase',ecommerce:{transaction_id:'T1',value:'1,234.50',currency:'EUR',items:[{item_id:'a',price:1,quantity:'2'}]}});`)
	f.Add(`gtag('event','purchase',{transaction_id:"T_12345",value:30.03,tax:4.90,shipping:5.99,currency:"USD",coupon:"SUMMER_SALE"});`)
	f.Add(`dataLayer.push({ecommerce:null});dataLayer.push({event:'purchase',ecommerce:{purchase:{actionField:{id:'U1',revenue:'5'}}}});`)
	f.Add(`var dataLayer_content = {event:"purchase",ecommerce:{...x, transaction_id:[1,,2], value:-'3'}}; dataLayer.push(dataLayer_content, ...rest);`)
	f.Add(`dataLayer.push({event:'purchase',ecommerce:{transaction_id:'\u{110000}',value:1e999, [k]: 1}})`)
	f.Add(`</script><script>dataLayer.push({event:'purchase'`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []*Page{htmlPage(inScript(s)), htmlPage(s)} {
			got, _ := GA4{}.Extract(p)
			if len(got.Items) > maxItems {
				t.Fatalf("%d items", len(got.Items))
			}
		}
	})
}

// TestGA4UserData reads the customer data a page gives Google for enhanced
// conversions, in each of the three places gtag and GTM take it, and keeps
// it only hashed.
func TestGA4UserData(t *testing.T) {
	jane := order.NewCustomer(order.CustomerInfo{
		Email: "Jane.Doe@gmail.com", Phone: "+1 650-555-1212", FirstName: "Jane", LastName: "Doe",
		City: "Menlo Park", Region: "CA", PostalCode: "94025", Country: "US",
	})
	const purchase = `dataLayer.push({event:'purchase', ecommerce:{transaction_id:'U1', value:10, currency:'USD'}});`
	for _, tc := range []struct {
		name string
		js   string
		want *order.Customer
	}{
		{"gtag set user_data, in a script of its own", purchase + "\n</script><script>\n" +
			`gtag('set', 'user_data', {email: 'Jane.Doe@gmail.com', phone_number: '+1 650-555-1212',
				address: {first_name: 'Jane', last_name: 'Doe', street: '1 Hacker Way', city: 'Menlo Park', region: 'CA', postal_code: '94025', country: 'US'}});`,
			jane},
		{"data layer user_data beside the purchase", `dataLayer.push({event:'purchase', user_data: {email: ['Jane.Doe@gmail.com', 'other@example.com'],
				phone_number: '+1 650-555-1212', address: [{first_name: 'Jane', last_name: 'Doe', city: 'Menlo Park', region: 'CA', postal_code: '94025', country: 'US'}]},
				ecommerce:{transaction_id:'U1', value:10, currency:'USD'}});`, jane},
		{"gtag purchase parameters", `gtag('event', 'purchase', {transaction_id: 'U1', value: 10, currency: 'USD',
				user_data: {email: 'Jane.Doe@gmail.com', phone_number: '+1 650-555-1212', address: {first_name: 'Jane', last_name: 'Doe',
				city: 'Menlo Park', region: 'CA', postal_code: '94025', country: 'US'}}});`, jane},
		{"pre-hashed by the page: Google's forms only", purchase +
			`gtag('set', 'user_data', {sha256_email_address: '` + strings.ToUpper(order.Hash("janedoe@gmail.com")) + `', sha256_phone_number: '` + order.Hash("+16505551212") + `'});`,
			&order.Customer{EmailGoogle: order.Hash("janedoe@gmail.com"), PhoneE164: order.Hash("+16505551212")}},
		{"no user data", purchase, nil},
		{"user data but no purchase: nothing", `gtag('set', 'user_data', {email: 'jane@example.com'}); gtag('event', 'page_view');`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := GA4{}.Extract(htmlPage(inScript(tc.js)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if f.Customer != nil {
					t.Errorf("customer %+v, want none", f.Customer)
				}
				return
			}
			if f.OrderID != "U1" {
				t.Fatalf("order %q", f.OrderID)
			}
			if f.Customer == nil || *f.Customer != *tc.want {
				t.Errorf("customer\n got  %+v\n want %+v", f.Customer, tc.want)
			}
			if o := f.Order("purchase", ""); o.Customer != f.Customer {
				t.Error("the order does not carry the page's customer")
			}
		})
	}
}
