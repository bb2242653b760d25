package intake

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const testToken = "tok_0123456789abcdef0123"

func newEndpoint(tb testing.TB, cfg Config) *Endpoint {
	tb.Helper()
	e, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func insecure() *Endpoint { return mustNew(Config{Insecure: true}) }

func mustNew(cfg Config) *Endpoint {
	e, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return e
}

func query(q string) *Request { return &Request{Header: http.Header{}, RawQuery: q} }

func body(contentType, b string) *Request {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &Request{Header: h, Body: []byte(b)}
}

func TestRead(t *testing.T) {
	type want struct {
		click, session, id, event, amount, currency, coupon, payout string
		status                                                      order.Status
	}
	tests := []struct {
		name string
		e    *Endpoint
		req  *Request
		want want
	}{
		{"query", insecure(), query("click_id=abc123&order_id=1001&amount=49.90&currency=usd&coupon_code=SPRING"),
			want{click: "abc123", id: "1001", event: "purchase", amount: "49.90", currency: "USD", coupon: "SPRING", status: order.StatusApproved}},
		{"unescaped base64 click ID keeps its +", insecure(), query("clickid=ab+c/d==&txn_id=T1"),
			want{click: "ab+c/d==", id: "T1", event: "purchase", status: order.StatusApproved}},
		{"escaped + too", insecure(), query("clickid=ab%2Bc%2Fd%3D%3D&txn_id=T1"),
			want{click: "ab+c/d==", id: "T1", event: "purchase", status: order.StatusApproved}},
		{"+ is a space elsewhere", insecure(), query("subid=s1&txid=T+2&coupon=TWO+WORDS"),
			want{click: "s1", id: "T 2", event: "purchase", coupon: "TWO WORDS", status: order.StatusApproved}},
		{"form body", insecure(), body("application/x-www-form-urlencoded", "cid=ab+c&transaction_id=T3&revenue=1%2C234.50&goal=Lead&status=pending"),
			want{click: "ab+c", id: "T3", event: "lead", amount: "1234.50", status: order.StatusPending}},
		{"json body", insecure(), body("application/json", `{"click_id":"ab+c/d==","order_id":"J1","amount":12.5,"currency":"EUR","event":"ftd","extra":{"x":1},"n":null}`),
			want{click: "ab+c/d==", id: "J1", event: "ftd", amount: "12.50", currency: "EUR", status: order.StatusApproved}},
		{"json without content type", insecure(), body("", `{"order_id":"J2","session":"SESSIONREF"}`),
			want{session: "SESSIONREF", id: "J2", event: "purchase", status: order.StatusApproved}},
		{"json integer order ID", insecure(), body("application/json", `{"order_id":1001}`),
			want{id: "1001", event: "purchase", status: order.StatusApproved}},
		{"payout is the amount when there is none", insecure(), query("order_id=P1&payout=7.5&currency=USD"),
			want{id: "P1", event: "purchase", amount: "7.50", currency: "USD", payout: "7.50", status: order.StatusApproved}},
		{"payout beside an amount", insecure(), query("order_id=P2&amount=100&payout=30"),
			want{id: "P2", event: "purchase", amount: "100.00", payout: "30.00", status: order.StatusApproved}},
		{"body and query together", insecure(), &Request{Header: http.Header{"Content-Type": {"application/json"}}, RawQuery: "event=lead", Body: []byte(`{"order_id":"B1"}`)},
			want{id: "B1", event: "lead", status: order.StatusApproved}},
		{"the same value twice", insecure(), query("order_id=D1&order_id=D1"),
			want{id: "D1", event: "purchase", status: order.StatusApproved}},
		{"refund with a negative amount", insecure(), query("order_id=R1&status=refund&amount=-49.90"),
			want{id: "R1", event: "purchase", amount: "-49.90", status: order.StatusRefunded}},
		{"chargeback", insecure(), query("order_id=R2&status=Chargeback"),
			want{id: "R2", event: "purchase", status: order.StatusRefunded}},
		{"declined", insecure(), query("order_id=R3&cnv_status=declined"),
			want{id: "R3", event: "purchase", status: order.StatusRejected}},
		{"defaults", mustNew(Config{Insecure: true, Event: "Lead", DefaultCurrency: "gbp"}), query("order_id=L1&amount=5"),
			want{id: "L1", event: "lead", amount: "5.00", currency: "GBP", status: order.StatusApproved}},
		{"renamed fields", mustNew(Config{Insecure: true, Names: map[Field][]string{FieldOrderID: {"oid"}, FieldClickID: {"ref"}}}),
			query("ref=R-1&oid=O-1&order_id=ignored&click_id=ignored"),
			want{click: "R-1", id: "O-1", event: "purchase", status: order.StatusApproved}},
		{"first name wins", insecure(), query("subid=second&click_id=first&order_id=F1"),
			want{click: "first", id: "F1", event: "purchase", status: order.StatusApproved}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := tt.e.Read(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			o := rep.Order
			got := want{click: rep.ClickID, session: rep.SessionRef, id: o.ID, event: o.Event, currency: o.Currency,
				coupon: o.Coupon, payout: o.Values[ValuePayout], status: o.Status}
			if o.HasAmount {
				got.amount = o.Amount.ForCurrency(o.Currency)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if o.Source != "endpoint" {
				t.Errorf("source %q", o.Source)
			}
		})
	}
}

func TestReadBadInput(t *testing.T) {
	tests := []struct {
		name   string
		e      *Endpoint
		req    *Request
		reason string
	}{
		{"no order ID", insecure(), query("click_id=abc&amount=1"), "no order ID: send it as order_id (or txn_id, txid, transaction_id)"},
		{"empty order ID", insecure(), query("order_id=+&click_id=abc"), "no order ID"},
		{"renamed order ID missing", mustNew(Config{Insecure: true, Names: map[Field][]string{FieldOrderID: {"oid"}}}), query("order_id=1"), "no order ID: send it as oid"},
		{"amount not a number", insecure(), query("order_id=1&amount=abc"), `amount "abc" is not a number`},
		{"payout not a number", insecure(), query("order_id=1&payout=1.2.3"), `payout "1.2.3" is not a number`},
		{"negative amount", insecure(), query("order_id=1&amount=-5"), "negative amount"},
		{"negative payout", insecure(), query("order_id=1&amount=5&payout=-1"), "negative payout"},
		{"amount out of range", insecure(), query("order_id=1&amount=10000000000000"), "out of range"},
		{"currency not a code", insecure(), query("order_id=1&amount=5&currency=dollars"), `currency "dollars" is not an ISO 4217 code`},
		{"unknown currency", insecure(), query("order_id=1&amount=5&currency=XYZ"), `currency "XYZ"`},
		{"unknown status", insecure(), query("order_id=1&status=maybe"), `status "maybe": want approved, pending, rejected or refunded`},
		{"bad event", insecure(), query("order_id=1&event=a%2Fb"), `event: "a/b"`},
		{"long event", insecure(), query("order_id=1&event=" + strings.Repeat("e", 65)), "event"},
		{"two different values", insecure(), query("order_id=1&order_id=2"), "order_id sent 2 times with different values"},
		{"bad click ID", insecure(), query("order_id=1&click_id=a%00b"), "click_id: invalid click ID"},
		{"oversized click ID", insecure(), query("order_id=1&click_id=" + strings.Repeat("c", 300)), "longer than 255"},
		{"order ID with a control character", insecure(), query("order_id=a%0Ab"), "order ID: control characters"},
		{"oversized order ID", insecure(), query("order_id=" + strings.Repeat("o", 256)), "order ID: 256 bytes"},
		{"bad escape", insecure(), query("order_id=%zz"), "order_id: bad escape"},
		{"bad escape in a name", insecure(), query("order%zz=1"), "bad escape in a parameter name"},
		{"not JSON", insecure(), body("application/json", `{"order_id":`), "not a JSON object"},
		{"JSON array", insecure(), body("application/json", `[{"order_id":"1"}]`), "not a JSON object"},
		{"two JSON values", insecure(), body("application/json", `{"order_id":"1"} {"order_id":"2"}`), "more than one JSON value"},
		{"multipart", insecure(), body("multipart/form-data; boundary=x", "--x--"), "Content-Type multipart/form-data"},
		{"too many parameters", insecure(), query("order_id=1" + strings.Repeat("&p=1", 3) + manyParams(300)), "more than 256 parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.e.Read(tt.req)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("err %v, want ErrBadInput", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err %q does not say %q", err, tt.reason)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("&p")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + i/26)))
		b.WriteString("=1")
	}
	return b.String()
}

func TestAuthenticate(t *testing.T) {
	other := "tok_fedcba9876543210fedc"
	std := mustNew(Config{Tokens: []Token{{Secret: testToken}}})
	tests := []struct {
		name string
		e    *Endpoint
		req  *Request
		ok   bool
	}{
		{"default: query parameter", std, query("order_id=1&token=" + testToken), true},
		{"default: form parameter", std, body("application/x-www-form-urlencoded", "order_id=1&token="+testToken), true},
		{"default: JSON member", std, body("application/json", `{"order_id":"1","token":"`+testToken+`"}`), true},
		{"default: header", std, &Request{Header: http.Header{"X-Postback-Token": {testToken}}, RawQuery: "order_id=1"}, true},
		{"default: none", std, query("order_id=1"), false},
		{"default: wrong", std, query("order_id=1&token=" + other), false},
		{"default: a prefix", std, query("order_id=1&token=" + testToken[:20]), false},
		{"default: with a suffix", std, query("order_id=1&token=" + testToken + "x"), false},
		{"default: sent twice", std, query("order_id=1&token=" + testToken + "&token=" + other), false},
		{"default: header sent twice", std, &Request{Header: http.Header{"X-Postback-Token": {testToken, other}}, RawQuery: "order_id=1"}, false},
		{"rotation: the new one", mustNew(Config{Tokens: []Token{{Secret: other}, {Secret: testToken}}}), query("order_id=1&token=" + testToken), true},
		{"named parameter", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InParam, Name: "secret"}}}), query("order_id=1&secret=" + testToken), true},
		{"named parameter: not the header", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InParam, Name: "secret"}}}),
			&Request{Header: http.Header{"X-Postback-Token": {testToken}}, RawQuery: "order_id=1"}, false},
		{"named header", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InHeader, Name: "x-postback-secret"}}}),
			&Request{Header: http.Header{"X-Postback-Secret": {testToken}}, RawQuery: "order_id=1"}, true},
		{"named header: not the parameter", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InHeader, Name: "X-Postback-Secret"}}}),
			query("order_id=1&token=" + testToken), false},
		{"path", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InPath}}}), &Request{Header: http.Header{}, RawQuery: "order_id=1", PathToken: testToken}, true},
		{"path: wrong segment", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InPath}}}), &Request{Header: http.Header{}, RawQuery: "order_id=1", PathToken: other}, false},
		{"path: not in the query", mustNew(Config{Tokens: []Token{{Secret: testToken, In: InPath}}}), query("order_id=1&token=" + testToken), false},
		{"allowlist only: no token needed", mustNew(Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}), query("order_id=1"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.e.Read(tt.req)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("err %v, want ErrUnauthorized", err)
				}
				if strings.Contains(err.Error(), testToken[4:]) || strings.Contains(err.Error(), other[4:]) {
					t.Errorf("error %q shows a token", err)
				}
			}
		})
	}
}

// TestUnauthorizedBeforeBadInput: a caller without the token learns
// nothing of how its report would be read.
func TestUnauthorizedBeforeBadInput(t *testing.T) {
	e := mustNew(Config{Tokens: []Token{{Secret: testToken}}})
	for _, req := range []*Request{
		body("application/json", `{"order_id":`),
		query("amount=abc"),
		body("text/plain", "hello"),
	} {
		if _, err := e.Read(req); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%q %q: %v, want ErrUnauthorized", req.RawQuery, req.Body, err)
		}
	}
}

func TestAllowed(t *testing.T) {
	e := mustNew(Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.7/32")}})
	for ip, ok := range map[string]bool{
		"10.1.2.3": true, "10.2.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::1": true, "2001:db9::1": false, "::ffff:10.1.0.9": true, "fe80::1%eth0": false,
		"127.0.0.1": false, "": false, "not an ip": false, "10.1.2.3:4567": false,
	} {
		err := e.Allowed(ip)
		if ok != (err == nil) || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("Allowed(%q) = %v, want ok=%v", ip, err, ok)
		}
	}
	if err := insecure().Allowed("203.0.113.9"); err != nil {
		t.Errorf("no allowlist: %v", err)
	}
	// A host address written with host bits is the network it names.
	e = mustNew(Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")}})
	if err := e.Allowed("10.1.200.1"); err != nil {
		t.Errorf("10.1.2.3/16: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "must be declared insecure"},
		{"insecure with a token", Config{Insecure: true, Tokens: []Token{{Secret: testToken}}}, "drop one of them"},
		{"insecure with allow", Config{Insecure: true, Allow: allow}, "drop one of them"},
		{"short token", Config{Tokens: []Token{{Secret: "short"}}}, "shorter than 16 characters"},
		{"empty token", Config{Tokens: []Token{{Secret: ""}}}, "token #1: empty"},
		{"token with a newline", Config{Tokens: []Token{{Secret: testToken + "\n"}}}, "white space"},
		{"token with a space", Config{Tokens: []Token{{Secret: "tok 0123456789abcdef"}}}, "printable ASCII"},
		{"path token with a slash", Config{Tokens: []Token{{Secret: "tok/0123456789abcdef", In: InPath}}}, "cannot hold"},
		{"header without a name", Config{Tokens: []Token{{Secret: testToken, In: InHeader}}}, "header name"},
		{"token parameter read as a field", Config{Tokens: []Token{{Secret: testToken, In: InParam, Name: "order_id"}}}, `parameter "order_id" is read for order_id`},
		{"default token parameter renamed into a field", Config{Tokens: []Token{{Secret: testToken}}, Names: map[Field][]string{FieldCoupon: {"token"}}}, `parameter "token" is read for coupon`},
		{"one parameter for two fields", Config{Insecure: true, Names: map[Field][]string{FieldCoupon: {"click_id"}}}, `parameter "click_id" is read for click_id already`},
		{"unknown field", Config{Insecure: true, Names: map[Field][]string{"offer": {"o"}}}, "param offer: unknown field"},
		{"no names", Config{Insecure: true, Names: map[Field][]string{FieldEvent: {}}}, "param event: no parameter name"},
		{"bad name", Config{Insecure: true, Names: map[Field][]string{FieldEvent: {"a=b"}}}, "not a parameter name"},
		{"bad event", Config{Insecure: true, Event: "buy now"}, "event"},
		{"bad currency", Config{Insecure: true, DefaultCurrency: "dollar"}, "default_currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
	if e := newEndpoint(t, Config{Tokens: []Token{{Secret: testToken, In: InPath}}}); !e.PathToken() {
		t.Error("PathToken false with a path token")
	}
	if e := newEndpoint(t, Config{Tokens: []Token{{Secret: testToken}}}); e.PathToken() {
		t.Error("PathToken true without a path token")
	}
}

// BenchmarkRead reads a typical report: a token, a click ID, an order
// with amount and currency.
func BenchmarkRead(b *testing.B) {
	e := newEndpoint(b, Config{Tokens: []Token{{Secret: testToken}}})
	r := query("token=" + testToken + "&click_id=ab+c/d==&order_id=1001&amount=49.90&currency=USD&payout=12")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Read(r); err != nil {
			b.Fatal(err)
		}
	}
}
