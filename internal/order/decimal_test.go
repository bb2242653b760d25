package order

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"49.9", "49.9", false},
		{"49.90", "49.9", false},
		{"1234", "1234", false},
		{"1,234.50", "1234.5", false},
		{"1.234,50", "1234.5", false},
		{"12,34", "12.34", false},
		{"1,234", "1234", false},
		{"1,234,567.89", "1234567.89", false},
		{"1 234,50", "1234.5", false},
		{"-3.5", "-3.5", false},
		{"+7", "7", false},
		{"0.1", "0.1", false},
		{".5", "0.5", false},
		{"", "", true},
		{"abc", "", true},
		{"1.2.3", "", true},
		{"12,34,5", "", true},
		{"1e5", "", true},
		{"99999999999999999999", "", true},
		{"0.123456789", "", true},
	} {
		d, err := ParseDecimal(tc.in)
		if tc.err {
			if err == nil || !errors.Is(err, ErrBadAmount) {
				t.Errorf("ParseDecimal(%q) = %v, %v; want ErrBadAmount", tc.in, d, err)
			}
			continue
		}
		if err != nil || d.String() != tc.want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %s", tc.in, d, err, tc.want)
		}
	}
}

func TestDecimalExactArithmetic(t *testing.T) {
	a, _ := ParseDecimal("0.10")
	b, _ := ParseDecimal("0.1")
	if !a.Equal(b) {
		t.Error("0.10 != 0.1")
	}
	if got := FromMinor(1199, "usd").ForCurrency("USD"); got != "11.99" {
		t.Errorf("1199 cents = %s", got)
	}
	if got := FromMinor(500, "JPY").ForCurrency("JPY"); got != "500" {
		t.Errorf("500 yen = %s", got)
	}
	if got := FromMinor(1234, "KWD").ForCurrency("KWD"); got != "1.234" {
		t.Errorf("1234 fils = %s", got)
	}
	d, _ := ParseDecimal("49.9")
	if d.ForCurrency("USD") != "49.90" || d.Minor("USD") != 4990 {
		t.Errorf("49.9 USD = %s / %d", d.ForCurrency("USD"), d.Minor("USD"))
	}
	r, _ := ParseDecimal("2.345")
	if r.Fixed(2) != "2.35" || r.ForCurrency("USD") != "2.345" {
		t.Errorf("rounding: %s, %s", r.Fixed(2), r.ForCurrency("USD"))
	}
	if h, _ := ParseDecimal("0.445"); h.Fixed(1) != "0.4" {
		t.Errorf("0.445 to one decimal = %s (double rounding)", h.Fixed(1))
	}
	if h, _ := ParseDecimal("1.2345"); h.Minor("USD") != 123 {
		t.Errorf("1.2345 USD in cents = %d", h.Minor("USD"))
	}
	if got := FromMinor(math.MinInt64, "JPY").String(); got != "-9223372036854775808" {
		t.Errorf("most negative amount = %s", got)
	}
	m, err := ParseMinor("1000", "USD")
	if err != nil || m.ForCurrency("USD") != "10.00" {
		t.Errorf("ParseMinor = %v %v", m, err)
	}
	if NormalizeCurrency(" usd ") != "USD" || NormalizeCurrency("us$") != "" || NormalizeCurrency("EURO") != "" {
		t.Error("NormalizeCurrency")
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"49.9", "1,234.50", "1.234,50", "-0", "12,34", "", "9223372036854775807", "0.00000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		// Whatever parses must print and parse back to the same value.
		back, err := ParseDecimal(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("%q -> %s -> %v, %v", s, d, back, err)
		}
	})
}

func TestDecimalJSON(t *testing.T) {
	for _, s := range []string{"49.90", "0", "-3.5", "1234", "0.00000001"} {
		var d Decimal
		if err := json.Unmarshal([]byte(`"`+s+`"`), &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		b, _ := json.Marshal(d)
		if string(b) != `"`+s+`"` {
			t.Errorf("%s round-tripped to %s", s, b)
		}
	}
	for _, bad := range []string{`""`, `"1,5"`, `"abc"`, `"1.2.3"`, `"-"`, `".5"`} {
		var d Decimal
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s was accepted as %v", bad, d)
		}
	}
}

func TestOrderCheck(t *testing.T) {
	amt := func(s string) Decimal {
		d, err := ParseDecimal(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		o    Order
		bad  bool
	}{
		{"plain sale", Order{ID: "1", Event: "purchase", Amount: amt("49.90"), HasAmount: true, Currency: "USD"}, false},
		{"no amount", Order{ID: "1", Event: "lead"}, false},
		{"negative sale", Order{ID: "1", Event: "purchase", Amount: amt("-50.00"), HasAmount: true, Currency: "USD"}, true},
		{"negative refund", Order{ID: "1", Event: "purchase", Status: StatusRefunded, Amount: amt("-50.00"), HasAmount: true}, false},
		{"unknown currency", Order{ID: "1", Event: "purchase", Amount: amt("5"), HasAmount: true, Currency: "ZZZ"}, true},
		{"long ID", Order{ID: strings.Repeat("x", 10<<10), Event: "purchase"}, true},
		{"huge amount", Order{ID: "1", Event: "purchase", Amount: amt("1000000000000"), HasAmount: true, Currency: "USD"}, true},
		{"largest amount", Order{ID: "1", Event: "purchase", Amount: amt("999999999999.99"), HasAmount: true, Currency: "USD"}, false},
		{"unreadable amount", Order{ID: "1", Event: "purchase", Invalid: []string{"amount: 1e30 out of range"}}, true},
	} {
		if got := tc.o.Check(); (len(got) > 0) != tc.bad {
			t.Errorf("%s: Check() = %v", tc.name, got)
		}
	}
	if !KnownCurrency("EUR") || KnownCurrency("eur") || KnownCurrency("ZZZ") || KnownCurrency("") {
		t.Error("KnownCurrency")
	}
}
