package detect

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// htmlPage wraps a body as a 200 text/html response.
func htmlPage(body string) *Page {
	return &Page{Status: 200, Header: http.Header{"Content-Type": {"text/html; charset=UTF-8"}}, Body: []byte(body)}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testdataPage(t testing.TB, name string) *Page {
	p := htmlPage("")
	p.Body = readTestdata(t, name)
	return p
}

func dec(t testing.TB, s string) order.Decimal {
	t.Helper()
	d, err := order.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkFields compares the scalar fields and, when wantItems is not nil, the
// items.
func checkFields(t *testing.T, got, want Fields) {
	t.Helper()
	gotItems, wantItems := got.Items, want.Items
	got.Items, want.Items = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields = %+v, want %+v", got, want)
	}
	if wantItems != nil && !reflect.DeepEqual(gotItems, wantItems) {
		t.Errorf("items = %+v, want %+v", gotItems, wantItems)
	}
}

// fakeSource returns fixed fields and counts its calls.
type fakeSource struct {
	name  string
	f     Fields
	err   error
	calls int
}

func (s *fakeSource) Name() string { return s.name }
func (s *fakeSource) Extract(*Page) (Fields, error) {
	s.calls++
	return s.f, s.err
}

func TestExtractMerge(t *testing.T) {
	page := testdataPage(t, "woocommerce-thankyou.html")
	regexID, err := NewRegex(`Order number:\s*<strong>(?P<order_id>[^<]+)</strong>`)
	if err != nil {
		t.Fatal(err)
	}
	page.Header.Set("X-Order-Id", "H-1")

	t.Run("id from regex, the rest from ga4", func(t *testing.T) {
		f, errs := Extract(page, []Source{regexID, GA4{}})
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		if f.OrderID != "727" || f.Amount != "1249.90" || f.Currency != "USD" || len(f.Items) != 2 {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("first source wins per field", func(t *testing.T) {
		f, _ := Extract(page, []Source{Header{OrderID: "X-Order-Id", Amount: "X-Missing"}, GA4{}})
		if f.OrderID != "H-1" || f.Amount != "1249.90" {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("amount minor flag travels with the amount", func(t *testing.T) {
		first := &fakeSource{name: "a", f: Fields{OrderID: "1"}}
		second := &fakeSource{name: "b", f: Fields{OrderID: "2", Amount: "1999", AmountMinor: true}}
		f, _ := Extract(page, []Source{first, second})
		if f.OrderID != "1" || f.Amount != "1999" || !f.AmountMinor {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("errors are named and do not stop later sources", func(t *testing.T) {
		boom := errors.New("boom")
		f, errs := Extract(page, []Source{&fakeSource{name: "broken", err: boom}, GA4{}})
		if len(errs) != 1 || !errors.Is(errs[0], boom) || !strings.HasPrefix(errs[0].Error(), "broken: ") {
			t.Fatalf("errs = %v", errs)
		}
		if f.OrderID != "727" {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("sources after a complete result are not run", func(t *testing.T) {
		full := &fakeSource{name: "full", f: Fields{OrderID: "1", Amount: "2", Currency: "EUR", Coupon: "C", Items: []order.Item{{ID: "x"}}}}
		later := &fakeSource{name: "later"}
		Extract(page, []Source{full, later})
		if later.calls != 0 {
			t.Fatal("later source ran after every field was set")
		}
	})
	t.Run("nothing found", func(t *testing.T) {
		f, errs := Extract(htmlPage("<p>hello</p>"), []Source{GA4{}, Magento{}, JSONLD{}})
		if !f.IsZero() || len(errs) != 0 {
			t.Fatalf("got %+v %v", f, errs)
		}
	})
}

func TestFieldsOrder(t *testing.T) {
	items := []order.Item{{ID: "A", Price: order.Decimal{Coef: 5}, Quantity: 1}}
	tests := []struct {
		name         string
		f            Fields
		defCur       string
		wantID       string
		wantAmount   string // "" means HasAmount false
		wantCurrency string
		wantProblems []string // substrings, in order
	}{
		{name: "complete", f: Fields{OrderID: " 727 ", Amount: "1,249.90", Currency: "usd", Coupon: "W10", Items: items},
			defCur: "EUR", wantID: "727", wantAmount: "1249.9", wantCurrency: "USD"},
		{name: "currency falls back to default", f: Fields{OrderID: "1", Amount: "10"}, defCur: "eur",
			wantID: "1", wantAmount: "10", wantCurrency: "EUR"},
		{name: "invalid currency is a problem, default used", f: Fields{OrderID: "1", Amount: "10", Currency: "$"}, defCur: "GBP",
			wantID: "1", wantAmount: "10", wantCurrency: "GBP", wantProblems: []string{`invalid currency "$"`}},
		{name: "unparseable amount kept as a problem", f: Fields{OrderID: "1", Amount: "N/A", Currency: "USD"},
			wantID: "1", wantCurrency: "USD", wantProblems: []string{"amount not recorded", "N/A"}},
		{name: "minor units by currency exponent", f: Fields{OrderID: "1", Amount: "12395", Currency: "EUR", AmountMinor: true},
			wantID: "1", wantAmount: "123.95", wantCurrency: "EUR"},
		{name: "minor units zero-decimal currency", f: Fields{OrderID: "1", Amount: "12395", Currency: "JPY", AmountMinor: true},
			wantID: "1", wantAmount: "12395", wantCurrency: "JPY"},
		{name: "minor units not an integer", f: Fields{OrderID: "1", Amount: "12.5", Currency: "EUR", AmountMinor: true},
			wantID: "1", wantCurrency: "EUR", wantProblems: []string{"amount not recorded"}},
		{name: "no order id", f: Fields{Amount: "5", Currency: "USD"}, wantAmount: "5", wantCurrency: "USD",
			wantProblems: []string{"no order ID"}},
		{name: "amount without any currency", f: Fields{OrderID: "1", Amount: "5"}, wantID: "1", wantAmount: "5",
			wantProblems: []string{"no currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.f.Order("purchase", tt.defCur)
			if o.Event != "purchase" || o.Status != order.StatusApproved {
				t.Errorf("event/status = %q/%q", o.Event, o.Status)
			}
			if o.ID != tt.wantID || o.Currency != tt.wantCurrency {
				t.Errorf("id/currency = %q/%q, want %q/%q", o.ID, o.Currency, tt.wantID, tt.wantCurrency)
			}
			if tt.wantAmount == "" {
				if o.HasAmount {
					t.Errorf("HasAmount with amount %v", o.Amount)
				}
			} else if !o.HasAmount || !o.Amount.Equal(dec(t, tt.wantAmount)) {
				t.Errorf("amount = %v (has %v), want %s", o.Amount, o.HasAmount, tt.wantAmount)
			}
			if len(tt.wantProblems) == 0 && len(o.Problems) > 0 {
				t.Errorf("unexpected problems %q", o.Problems)
			}
			all := strings.Join(o.Problems, "\n")
			for _, w := range tt.wantProblems {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", o.Problems, w)
				}
			}
			if tt.f.Coupon != "" && o.Coupon != strings.TrimSpace(tt.f.Coupon) {
				t.Errorf("coupon = %q", o.Coupon)
			}
			if len(tt.f.Items) > 0 {
				if !reflect.DeepEqual(o.Items, tt.f.Items) {
					t.Errorf("items = %v", o.Items)
				}
				o.Items[0].ID = "changed"
				if tt.f.Items[0].ID == "changed" {
					t.Error("order shares its items slice with the fields")
				}
			}
		})
	}
}

// FuzzFieldsOrder checks that building an order from any found text never
// panics and keeps HasAmount consistent with Problems.
func FuzzFieldsOrder(f *testing.F) {
	f.Add("727", "1,249.90", "usd", false)
	f.Add("", "12395", "JPY", true)
	f.Add("x", "1.234,50", "€", false)
	f.Add("x", "-0", "", true)
	f.Add("x", "99999999999999999999", "EUR", false)
	f.Fuzz(func(t *testing.T, id, amount, currency string, minor bool) {
		o := Fields{OrderID: id, Amount: amount, Currency: currency, AmountMinor: minor}.Order("purchase", "USD")
		if amount != "" && !o.HasAmount && len(o.Problems) == 0 {
			t.Fatalf("amount %q dropped without a problem", amount)
		}
		if o.Currency != "" && order.NormalizeCurrency(o.Currency) != o.Currency {
			t.Fatalf("currency %q not normalised", o.Currency)
		}
	})
}
