package detect

import (
	"errors"
	"net/http"
	"testing"
)

func TestJSON(t *testing.T) {
	spa := readTestdata(t, "spa-order.json")
	src := JSON{OrderID: "data.order.id", Amount: "data.order.totals.grand_total", Currency: "data.order.totals.currency",
		Coupon: "data.discount.code", AmountMinor: true}
	tests := []struct {
		name      string
		src       JSON
		body      []byte
		truncated bool
		want      Fields
		wantErr   error
	}{
		{name: "SPA order API, minor units", src: src, body: spa,
			want: Fields{OrderID: "ord_01HV6QZ8K3M2", Amount: "12395", AmountMinor: true, Currency: "eur"}},
		{name: "numeric id keeps its digits", src: JSON{OrderID: "data.order.number", Amount: "data.order.lines.0.unit_price"}, body: spa,
			want: Fields{OrderID: "100482", Amount: "5950"}},
		{name: "exact decimal digits", src: JSON{OrderID: "id", Amount: "total"}, body: []byte(`{"id":"A","total":0.30000000000000004}`),
			want: Fields{OrderID: "A", Amount: "0.30000000000000004"}},
		{name: "missing paths are not found", src: JSON{OrderID: "nope", Amount: "data.order"}, body: spa},
		{name: "not JSON", src: src, body: []byte("<html>oops</html>"), wantErr: ErrBadJSON},
		{name: "truncated: what the prefix holds", src: JSON{OrderID: "data.order.id", Currency: "meta.x"}, body: spa[:120], truncated: true,
			want: Fields{OrderID: "ord_01HV6QZ8K3M2"}},
		{name: "truncated before any field", src: src, body: spa[:10], truncated: true, wantErr: ErrBadJSON},
		{name: "empty body", src: src, body: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Page{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: tt.body, Truncated: tt.truncated}
			got, err := tt.src.Extract(p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			checkFields(t, got, tt.want)
		})
	}
	o := Fields{OrderID: "ord_01HV6QZ8K3M2", Amount: "12395", AmountMinor: true, Currency: "eur"}.Order("purchase", "")
	if o.Amount.Fixed(2) != "123.95" || o.Currency != "EUR" {
		t.Fatalf("order = %+v", o)
	}
}

// FuzzJSON runs the JSON source over arbitrary bodies.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"data":{"order":{"id":"x","totals":{"grand_total":1,"currency":"usd"}}}}`), false)
	f.Add([]byte(`{"data":{"order":{"id":`), true)
	f.Add([]byte(`[1,2,{"data":null}]`), false)
	src := JSON{OrderID: "data.order.id", Amount: "data.order.totals.grand_total", Currency: "data.order.totals.currency", Coupon: "data.#.code"}
	f.Fuzz(func(t *testing.T, body []byte, truncated bool) {
		got, err := src.Extract(&Page{Body: body, Truncated: truncated})
		if err != nil && !got.IsZero() {
			t.Fatalf("fields %+v with error %v", got, err)
		}
	})
}
