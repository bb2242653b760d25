package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// TestWebhookCustomers checks what each provider's order says of its
// customer, hashed at parse time, and that no clear-text identifier of the
// payload survives anywhere in the parsed order.
func TestWebhookCustomers(t *testing.T) {
	shopify := replace(t, fixture(t, "shopify_order.json"), `"email":"bob.norman@mail.example.com"`,
		`"email":"bob.norman@mail.example.com","phone":"+13125551212","billing_address":{"first_name":"Bob","last_name":"Norman",`+
			`"address1":"Chestnut Street 92","city":"Louisville","province":"Kentucky","province_code":"KY","zip":"40202","country":"United States","country_code":"US","phone":"+1(502)-459-2181"}`)
	woo, err := NewWooCommerce(Config{Secrets: []string{wooSecret}})
	if err != nil {
		t.Fatal(err)
	}
	shop, err := NewShopify(Config{Secrets: []string{shopifySecret}})
	if err != nil {
		t.Fatal(err)
	}
	gum, err := NewGumroad(Config{Secrets: []string{gumroadToken}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		p     Provider
		req   *Request
		want  order.Customer
		clear []string
	}{
		{"stripe checkout", newStripe(t), &Request{Body: fixture(t, "stripe_session_completed.json")}, order.Customer{
			Email: order.Hash("captain.ronan@gmail.com"), EmailGoogle: order.Hash("captainronan@gmail.com"),
			EmailReddit: order.Hash("captainronan@gmail.com"), FirstName: order.Hash("ronan"),
			PostalCode: order.Hash("sw1a1aa"), Country: order.Hash("gb"),
		}, []string{"captain", "ronan", "SW1A"}},
		{"shopify billing address", shop, shopifyReq(shopify, "orders/paid"), order.Customer{
			Email: order.Hash("bob.norman@mail.example.com"), EmailGoogle: order.Hash("bob.norman@mail.example.com"),
			EmailReddit: order.Hash("bobnorman@mail.example.com"), Phone: order.Hash("13125551212"), PhoneE164: order.Hash("+13125551212"),
			FirstName: order.Hash("bob"), LastName: order.Hash("norman"), City: order.Hash("louisville"), Region: order.Hash("ky"),
			PostalCode: order.Hash("40202"), Country: order.Hash("us"),
		}, []string{"bob", "norman", "Louisville", "3125551212"}},
		{"woocommerce billing", woo, wooReq(fixture(t, "woocommerce_order.json"), "order.updated"), order.Customer{
			Email: order.Hash("john.doe@example.com"), EmailGoogle: order.Hash("john.doe@example.com"),
			EmailReddit: order.Hash("johndoe@example.com"), Phone: order.Hash("15555555555"), PhoneE164: order.Hash("+15555555555"),
			FirstName: order.Hash("john"), LastName: order.Hash("doe"), City: order.Hash("sanfrancisco"), Region: order.Hash("ca"),
			PostalCode: order.Hash("94103"), Country: order.Hash("us"),
		}, []string{"john", "Doe", "San Francisco", "555"}},
		{"gumroad", gum, gumroadReq(fixture(t, "gumroad_sale.form"), "/.well-known/postback/gumroad/"+gumroadToken), order.Customer{
			Email: order.Hash("buyer@example.com"), EmailGoogle: order.Hash("buyer@example.com"), EmailReddit: order.Hash("buyer@example.com"),
		}, []string{"buyer@"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := tc.p.Parse(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			c := ev.Order.Customer
			if c == nil {
				t.Fatal("no customer")
			}
			// Fields the payload does not give stay empty; compare only
			// what the case names.
			if tc.want.Phone == "" {
				c2 := *c
				c2.Phone, c2.PhoneE164 = "", ""
				c = &c2
			}
			if *c != tc.want {
				t.Errorf("customer\n got  %+v\n want %+v", *c, tc.want)
			}
			stored, err := json.Marshal(ev.Order)
			if err != nil {
				t.Fatal(err)
			}
			dump := strings.ToLower(string(stored) + ev.Reason)
			for _, v := range ev.Order.ClickIDs {
				dump += " " + strings.ToLower(v)
			}
			for _, clear := range tc.clear {
				if strings.Contains(dump, strings.ToLower(clear)) {
					t.Errorf("clear-text %q kept in the order", clear)
				}
			}
		})
	}
}
