package detect

import (
	"net/http"
	"testing"
)

func TestHeader(t *testing.T) {
	p := &Page{Status: 200, Header: http.Header{
		"X-Order-Id":       {" 2024-0042 "},
		"X-Order-Total":    {"4999"},
		"X-Order-Currency": {"sek"},
	}}
	tests := []struct {
		name string
		src  Header
		page *Page
		want Fields
	}{
		{name: "all configured", src: Header{OrderID: "x-order-id", Amount: "X-Order-Total", Currency: "X-Order-Currency", Coupon: "X-Coupon", AmountMinor: true},
			page: p, want: Fields{OrderID: "2024-0042", Amount: "4999", AmountMinor: true, Currency: "sek"}},
		{name: "unconfigured fields are not read", src: Header{OrderID: "X-Order-Id"}, page: p, want: Fields{OrderID: "2024-0042"}},
		{name: "minor flag only with an amount", src: Header{OrderID: "X-Order-Id", AmountMinor: true}, page: p, want: Fields{OrderID: "2024-0042"}},
		{name: "nil header map", src: Header{OrderID: "X-Order-Id"}, page: &Page{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.Extract(tt.page)
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, got, tt.want)
		})
	}
}
