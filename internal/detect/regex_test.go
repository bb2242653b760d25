package detect

import (
	"errors"
	"net/http"
	"testing"
)

func TestNewRegex(t *testing.T) {
	tests := []struct {
		pattern string
		wantErr error // nil: valid
		bad     bool  // any error
	}{
		{pattern: `Order number: <strong>(?P<order_id>\d+)</strong>`},
		{pattern: `(?P<order_id>\w+)-(?P<amount>[\d.]+)-(?P<currency>[A-Z]{3})-(?P<coupon>\w*)`},
		{pattern: `Order number: (\d+)`, wantErr: ErrRegexGroups},
		{pattern: `(?P<orderid>\d+)`, wantErr: ErrRegexGroups},
		{pattern: `(?P<order_id>\d+)(?P<total>\d+)`, wantErr: ErrRegexGroups},
		{pattern: `(?P<order_id>\d+`, bad: true},
	}
	for _, tt := range tests {
		re, err := NewRegex(tt.pattern)
		switch {
		case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
			t.Errorf("NewRegex(%q) err = %v, want %v", tt.pattern, err, tt.wantErr)
		case tt.bad && err == nil:
			t.Errorf("NewRegex(%q) accepted", tt.pattern)
		case tt.wantErr == nil && !tt.bad && (err != nil || re == nil):
			t.Errorf("NewRegex(%q) = %v", tt.pattern, err)
		}
	}
}

func TestRegex(t *testing.T) {
	woo := testdataPage(t, "woocommerce-thankyou.html")
	tests := []struct {
		name    string
		pattern string
		minor   bool
		page    *Page
		want    Fields
	}{
		{name: "woocommerce order number and total", page: woo,
			pattern: `(?s)Order number:\s*<strong>(?P<order_id>[^<]+)</strong>.*?Total:\s*<strong>.*?</span>(?P<amount>[\d.,]+)</bdi>`,
			want:    Fields{OrderID: "727", Amount: "1,249.90"}},
		{name: "each group from the first match it took part in", page: htmlPage(`<p>total=12.50</p><p>order=77</p><p>order=78</p>`),
			pattern: `order=(?P<order_id>\d+)|total=(?P<amount>[\d.]+)`, want: Fields{OrderID: "77", Amount: "12.50"}},
		{name: "character references decoded in HTML", page: htmlPage(`<b id="ord">A&amp;B-1</b> <b id="cur"> eur </b>`),
			pattern: `id="ord">(?P<order_id>[^<]+)<.*id="cur">(?P<currency>[^<]+)<`, want: Fields{OrderID: "A&B-1", Currency: "eur"}},
		{name: "kept as is in plain text", page: &Page{Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ref=A&amp;B")},
			pattern: `ref=(?P<order_id>\S+)`, want: Fields{OrderID: "A&amp;B"}},
		{name: "minor amount flag", page: htmlPage(`cents:1999`), pattern: `cents:(?P<amount>\d+)`, minor: true,
			want: Fields{Amount: "1999", AmountMinor: true}},
		{name: "no match", page: woo, pattern: `Invoice (?P<order_id>\d+)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re, err := NewRegex(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			re.AmountMinor = tt.minor
			got, err := re.Extract(tt.page)
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, got, tt.want)
		})
	}
	if _, err := (&Regex{}).Extract(woo); err == nil {
		t.Error("a Regex without a pattern extracted without error")
	}
}

// FuzzRegex runs a typical pattern over arbitrary bodies.
func FuzzRegex(f *testing.F) {
	re, err := NewRegex(`Order (?:number|#):?\s*(?:<[^>]+>)*(?P<order_id>[A-Za-z0-9-]+)|Total:\s*(?:<[^>]+>)*\D{0,3}(?P<amount>[\d.,]+)`)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`Order number: <strong>727</strong> Total: <strong>$1,249.90</strong>`))
	f.Add([]byte("Order #&amp;\xff"))
	f.Fuzz(func(t *testing.T, body []byte) {
		re.Extract(htmlPage(string(body)))
	})
}
