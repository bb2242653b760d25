package postback

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseURLRejects(t *testing.T) {
	for _, raw := range []string{
		"https://trk.example.com/?cid={clickid}",            // unknown token (typo)
		"https://trk.example.com/{transaction_id}",          // unknown token
		"{sub1}://trk.example.com/",                         // scheme
		"ht{sub1}tps://trk.example.com/",                    // scheme
		"https://{sub1}.example.com/",                       // host
		"https://trk.example.com{sub1}/",                    // host
		"https://trk.example.com{click_id}",                 // host, no path
		"https://{sub1}@trk.example.com/",                   // userinfo
		"https://user:{sub1}@trk.example.com/",              // userinfo
		"https://trk.example.com:{sub1}/",                   // port
		"https://trk.example.com/p#{click_id}",              // fragment
		"https://trk.example.com/?a=1#x={click_id}",         // fragment after query
		"https://trk.example.com/?{sub1}=1",                 // query key
		"https://trk.example.com/?a=1&{sub1}=2",             // query key
		"https://trk.example.com/?a=1&x{sub1}=2",            // part of a query key
		"https://trk.example.com/?cid={click_id",            // unclosed
		"https://trk.example.com/?cid=click_id}",            // unmatched
		"ftp://trk.example.com/?cid={click_id}",             // scheme not http(s)
		"/relative?cid={click_id}",                          // not absolute
		"https:///?cid={click_id}",                          // no host
		"https://trk.example.com/?cid={{click_id}&x={sub1}", // "{{" is literal, then "click_id}" is unmatched
	} {
		if _, err := ParseURL(raw); !errors.Is(err, ErrTemplate) {
			t.Errorf("ParseURL(%q) = %v, want an ErrTemplate", raw, err)
		}
	}
}

func TestUnknownTokenRejectedEverywhere(t *testing.T) {
	for name, parse := range map[string]func(string) (*Template, error){
		"form": ParseForm, "header": ParseHeader, "json": ParseJSON,
	} {
		raw := "{clickid}"
		if name == "json" {
			raw = `{"cid":"{clickid}"}`
		}
		if _, err := parse(raw); err == nil || !strings.Contains(err.Error(), "unknown token {clickid}") {
			t.Errorf("%s: %v, want unknown token {clickid}", name, err)
		}
	}
	_, err := New(Config{URL: "https://trk.example.com/?cid={clickid}"})
	if !errors.Is(err, ErrTemplate) {
		t.Errorf("New with {clickid}: %v, want ErrTemplate", err)
	}
	// The error names the token for a front end that points at the line,
	// and suggests the nearest known one when it is a slip.
	var unknown *UnknownTokenError
	if !errors.As(err, &unknown) || unknown.Token != "clickid" || !strings.Contains(err.Error(), "did you mean `{click_id}`?") {
		t.Errorf("New with {clickid}: %v, want an UnknownTokenError for clickid suggesting {click_id}", err)
	}
	if _, err := ParseForm("o={ordre_id}&u={utm_sorce}"); err == nil || !strings.Contains(err.Error(), "did you mean `{order_id}`?") {
		t.Errorf("{ordre_id}: %v", err)
	}
	if _, err := ParseForm("x={frobnicate}"); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("{frobnicate} is like no token, yet: %v", err)
	}
}

func TestRenderURLEscaping(t *testing.T) {
	tmpl, err := ParseURL("https://trk.example.com/c/{sub1}/{sub2}?cid={click_id}&lit={{x}}&o={order_id}#top")
	if err != nil {
		t.Fatal(err)
	}
	c := fixture("everflow", "transaction_id", "a&x=1#frag")
	c.Touchpoint.Subs = map[string]string{"sub1": "..", "sub2": "a/../b?c"}
	c.Order.ID = "ORD 1+2@evil.com"
	got, err := tmpl.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://trk.example.com/c/%2E%2E/a%2F..%2Fb%3Fc?cid=a%26x%3D1%23frag&lit={x}&o=ORD+1%2B2%40evil.com#top"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestBraceLiterals(t *testing.T) {
	tmpl, err := ParseJSON(`{"a":"{{not a token}}","b":"{click_id}"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(fixture("x", "clickid", "abc"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"{not a token}","b":"abc"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseJSON(t *testing.T) {
	bad := []string{
		`{"a":{click_id}}`,         // string token outside quotes
		`{"a":[{order_id}]}`,       // string token outside quotes, in an array
		`{"{click_id}":1}`,         // token in a key
		`{"x":1,"k{sub1}":2}`,      // token in a later key
		`{"n":{"{order_id}":"v"}}`, // token in a nested key
		`{"a":"{click_id}"`,        // not valid JSON
		`{"a":{amount}`,            // not valid JSON
	}
	for _, raw := range bad {
		if _, err := ParseJSON(raw); !errors.Is(err, ErrTemplate) {
			t.Errorf("ParseJSON(%q) = %v, want an ErrTemplate", raw, err)
		}
	}
	good := `{"amount":{amount},"ms":{timestamp_ms},"test":{test},"s":"{click_id}","arr":["{sub1}",{amount_minor}],"o":{"k":"{order_id}"}}`
	tmpl, err := ParseJSON(good)
	if err != nil {
		t.Fatal(err)
	}
	c := fixture("x", "clickid", "q\"uo\\te\n</script>")
	out, err := tmpl.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Amount json.Number `json:"amount"`
		S      string      `json:"s"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if v.Amount != "1234.50" || v.S != c.Touchpoint.ClickID {
		t.Errorf("amount %s, s %q", v.Amount, v.S)
	}
	// No amount renders as null, still valid JSON.
	c.Order.HasAmount = false
	out, _ = tmpl.Render(c)
	if !strings.Contains(out, `"amount":null`) || !json.Valid([]byte(out)) {
		t.Errorf("no amount: %s", out)
	}
}

func TestHeaderRefusesLineBreaks(t *testing.T) {
	d, err := NewTemplateDestination(Config{
		URL:     "https://trk.example.com/",
		Headers: map[string]string{"X-Click": "id={click_id}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb"} {
		if _, err := d.Render(context.Background(), fixture("x", "clickid", v)); !errors.Is(err, ErrTemplate) {
			t.Errorf("click id %q: err %v, want refused", v, err)
		}
	}
	r, err := d.Render(context.Background(), fixture("x", "clickid", "fine\tvalue"))
	if err != nil || r.Header.Get("X-Click") != "id=fine\tvalue" {
		t.Errorf("tab value: %v %q", err, r.Header.Get("X-Click"))
	}
}

// TestValueTokens: {value.<name>} renders the order's per-offer value,
// escaped for its place; a name no source set renders empty; a name that is
// not letters, digits and underscores is an unknown token at load.
func TestValueTokens(t *testing.T) {
	c := fixture("everflow", "transaction_id", "abc")
	c.Order.Values = map[string]string{"offer_id": "42", "goal": "trial & more", "payout": "12.50"}
	tests := []struct {
		name  string
		parse func(string) (*Template, error)
		raw   string
		want  string
	}{
		{"query", ParseURL, "https://trk.example.com/?oid={value.offer_id}&g={value.goal}&p={value.payout}",
			"https://trk.example.com/?oid=42&g=trial+%26+more&p=12.50"},
		{"path", ParseURL, "https://trk.example.com/o/{value.offer_id}/{value.goal}",
			"https://trk.example.com/o/42/trial%20&%20more"},
		{"unset renders empty", ParseURL, "https://trk.example.com/?x={value.nobody_sets_this}&oid={value.offer_id}",
			"https://trk.example.com/?x=&oid=42"},
		{"json string", ParseJSON, `{"goal":"{value.goal}","offer":"{value.offer_id}"}`, `{"goal":"trial \u0026 more","offer":"42"}`},
		{"form", ParseForm, "goal={value.goal}", "goal=trial+%26+more"},
		{"header", ParseHeader, "offer {value.offer_id}", "offer 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := tt.parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	for _, raw := range []string{
		"https://trk.example.com/?x={value.}",
		"https://trk.example.com/?x={value.offer-id}",
		"https://trk.example.com/?x={value}",
		"https://trk.example.com/?x={values.offer_id}",
	} {
		if _, err := ParseURL(raw); !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "unknown token") {
			t.Errorf("ParseURL(%q) = %v, want an unknown token error", raw, err)
		}
	}
	if _, err := ParseJSON(`{"offer":{value.offer_id}}`); err == nil {
		t.Error("a value outside a JSON string was accepted")
	}
}
