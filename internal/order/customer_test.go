package order

import (
	"encoding/json"
	"strings"
	"testing"
)

// Published examples of normalised and hashed values, from the platforms'
// own documentation:
//   - Meta, "Customer information parameters": em, ph, fn (three inputs).
//   - Snapchat, Conversions API "Parameters": em and ph.
//   - Reddit, "Manual advanced matching": em.
//   - Google, Data Manager API "Format user data": the normalised forms of
//     a Gmail address and a US phone number (Google publishes no hashes).
func TestCustomerPublishedExamples(t *testing.T) {
	for _, tc := range []struct {
		source string
		in     CustomerInfo
		field  func(*Customer) string
		want   string
	}{
		{"meta em", CustomerInfo{Email: "John_Smith@gmail.com"}, func(c *Customer) string { return c.Email },
			"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"},
		{"meta ph", CustomerInfo{Phone: "(650)555-1212", Country: "US"}, func(c *Customer) string { return c.Phone },
			"e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"},
		{"meta fn", CustomerInfo{FirstName: "Mary"}, func(c *Customer) string { return c.FirstName },
			"6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"},
		{"meta fn hangul", CustomerInfo{FirstName: "정"}, func(c *Customer) string { return c.FirstName },
			"8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"},
		{"meta fn accent", CustomerInfo{FirstName: "Valéry"}, func(c *Customer) string { return c.FirstName },
			"08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"},
		{"snap em", CustomerInfo{Email: "Person@Example.com"}, func(c *Customer) string { return c.Email },
			"542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"},
		{"reddit em", CustomerInfo{Email: "Al.ice$+Apple@Example.Com"}, func(c *Customer) string { return c.EmailReddit },
			"ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"},
		{"reddit em plain", CustomerInfo{Email: "alice@example.com"}, func(c *Customer) string { return c.EmailReddit },
			"ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"},
		{"google em", CustomerInfo{Email: "cloudy.sanfrancisco+shopping@gmail.com"}, func(c *Customer) string { return c.EmailGoogle },
			Hash("cloudysanfrancisco@gmail.com")},
		{"google em other domain", CustomerInfo{Email: "user.name+NYC@Example.com"}, func(c *Customer) string { return c.EmailGoogle },
			Hash("user.name+nyc@example.com")},
		{"google ph", CustomerInfo{Phone: "(800)555-0100", Country: "us"}, func(c *Customer) string { return c.PhoneE164 },
			Hash("+18005550100")},
	} {
		c := NewCustomer(tc.in)
		if c == nil {
			t.Errorf("%s: nothing hashed", tc.source)
			continue
		}
		if got := tc.field(c); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.source, got, tc.want)
		}
	}
	// Snapchat publishes the start of its phone example's hash.
	c := NewCustomer(CustomerInfo{Phone: "+44 844 412 4653"})
	if c == nil || !strings.HasPrefix(c.Phone, "dc008fda46e2e64002cf2f82a4906236282d4") {
		t.Errorf("snap ph = %+v", c)
	}
}

func TestE164Digits(t *testing.T) {
	for _, tc := range []struct {
		phone, country, want string
	}{
		{"+1 (650) 555-1212", "", "16505551212"},
		{"(650) 555-1212", "US", "16505551212"},
		{"1-650-555-1212", "us", "16505551212"},
		{"650-555-121", "US", ""}, // nine digits: not a NANP number
		{"020 7031 3000", "GB", "442070313000"},
		{"+44 (0)20 7031 3000", "", "442070313000"},
		{"0044 20 7031 3000", "DE", "442070313000"},
		{"030 123456", "DE", "4930123456"},
		{"4915112345678", "DE", "4915112345678"}, // international without "+"
		{"06 12 34 56 78", "FR", "33612345678"},
		{"06 1234 5678", "IT", "390612345678"}, // Italy keeps its leading 0
		{"8 912 345-67-89", "RU", "79123456789"},
		{"+1 650 555 1212 ext. 42", "", "16505551212"},
		{"555-1212", "", ""},          // no country: unknowable
		{"0612345678", "", ""},        // no country: unknowable
		{"call me", "US", ""},         // not a number
		{"+0 123 456 789", "", ""},    // no calling code starts with 0
		{"+1234567890123456", "", ""}, // 16 digits: too long
		{"(650) 555-1212", "ZZ", ""},  // unknown country
		{"  +49 30 123456  ", "FR", "4930123456"},
	} {
		if got := E164Digits(tc.phone, tc.country); got != tc.want {
			t.Errorf("E164Digits(%q, %q) = %q, want %q", tc.phone, tc.country, got, tc.want)
		}
	}
}

func TestNewCustomerForms(t *testing.T) {
	c := NewCustomer(CustomerInfo{
		Email: " Jane.Doe+news@GoogleMail.com ", Phone: "(650) 555-1212", FullName: "Jane Q. Doe",
		City: "Menlo Park", Region: "California", PostalCode: "94025-1234", Country: "US",
	})
	want := Customer{
		Email:       Hash("jane.doe+news@googlemail.com"),
		EmailGoogle: Hash("janedoe@googlemail.com"),
		EmailReddit: Hash("janedoe@googlemail.com"),
		Phone:       Hash("16505551212"),
		PhoneE164:   Hash("+16505551212"),
		FirstName:   Hash("jane"),
		LastName:    Hash("doe"),
		City:        Hash("menlopark"),
		Region:      Hash("ca"),
		PostalCode:  Hash("94025"),
		Country:     Hash("us"),
	}
	if c == nil || *c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	// Outside the US, regions and postal codes keep their letters.
	c = NewCustomer(CustomerInfo{FirstName: "O'Brien", LastName: "Smith-Jones", Region: "Île-de-France", PostalCode: "SW1A 1AA", Country: "gb"})
	if c.FirstName != Hash("obrien") || c.LastName != Hash("smithjones") || c.Region != Hash("îledefrance") || c.PostalCode != Hash("sw1a1aa") {
		t.Errorf("non-US forms: %+v", c)
	}
	// Values that cannot be normalised are left out, not hashed wrongly.
	for _, in := range []CustomerInfo{
		{}, {Email: "not an email"}, {Email: "a@b"}, {Email: "@example.com"}, {Phone: "555-1212"}, {Country: "USA"},
		{FullName: "   "}, {FirstName: "!!!"},
	} {
		if c := NewCustomer(in); c != nil {
			t.Errorf("%+v hashed to %+v", in, c)
		}
	}
	// Nothing is kept in clear: the JSON form holds hashes only.
	b, _ := json.Marshal(NewCustomer(CustomerInfo{Email: "jane@example.com", Phone: "+16505551212", FullName: "Jane Doe"}))
	for _, clear := range []string{"jane", "example", "6505551212", "doe"} {
		if strings.Contains(string(b), clear) {
			t.Errorf("stored customer shows %q: %s", clear, b)
		}
	}
}

func TestCustomerMerge(t *testing.T) {
	a := NewCustomer(CustomerInfo{Email: "a@example.com"})
	b := NewCustomer(CustomerInfo{Email: "b@example.com", Phone: "+16505551212"})
	m := a.Merge(b)
	if m.Email != a.Email || m.Phone != b.Phone {
		t.Errorf("merge: %+v", m)
	}
	if (*Customer)(nil).Merge(b) != b || a.Merge(nil) != a {
		t.Error("merge with nil")
	}
	if !IsHash(a.Email) || IsHash("a@example.com") || IsHash(strings.Repeat("g", 64)) {
		t.Error("IsHash")
	}
}
