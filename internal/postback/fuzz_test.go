package postback

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// nastyValues seed both fuzz targets: values that try to add a parameter,
// end the query, walk the path, change the host, or break a line.
var nastyValues = []string{
	"", "plain", "&x=1", "a&cid=evil", "#", "#frag", "?", "?x=1", "/../", "..", ".", "../..",
	"%00", "%2F", "%25", "\x00", "ünïcødé ☃ 日本", "\r\n", "a\r\nLocation: x", "@evil.com",
	"http://evil.com/", "a b+c", ";x=1", "=", "\"quoted\"", "\\", "\xff\xfe", "{click_id}", "}}{{",
}

const fuzzURLTemplate = "https://trk.example.com:8443/base/{sub1}/x{sub2}y/end?cid={click_id}&oid={order_id}&s1={sub1}&fixed=a%20b&t={test}"

// fuzzQueryPresets are the URL-only presets checked alongside the template,
// with the parameter that carries the click ID.
var fuzzQueryPresets = []struct {
	cfg      Config
	clickKey string
}{
	{Config{Preset: "everflow", Params: map[string]string{"domain": "trk.example.com", "nid": "1"}}, "transaction_id"},
	{Config{Preset: "tune", Params: map[string]string{"domain": "n.go2cloud.org"}}, "transaction_id"},
	{Config{Preset: "voluum", Params: map[string]string{"domain": "v.example.com"}}, "cid"},
	{Config{Preset: "binom", Params: map[string]string{"domain": "b.example.com"}}, "cnv_id"},
	{Config{Preset: "keitaro", Params: map[string]string{"domain": "k.example.com", "key": "k"}}, "subid"},
	{Config{Preset: "redtrack", Params: map[string]string{"domain": "r.example.com"}}, "clickid"},
	{Config{Preset: "awin", Params: map[string]string{"merchant": "1"}}, "cks"},
	{Config{Preset: "cj", Params: map[string]string{"cid": "1", "type": "2"}}, "CJEVENT"},
}

func fuzzConversion(clickID, orderID, sub1, sub2 string) *record.Postback {
	c := fixture("net", "clickid", clickID)
	c.Order.ID = orderID
	c.Touchpoint.Subs = map[string]string{"sub1": sub1, "sub2": sub2}
	return c
}

// escapedSegments splits a URL's escaped path and decodes each segment, so
// an escaped "/" inside a value stays inside its segment.
func escapedSegments(t *testing.T, u *url.URL) []string {
	t.Helper()
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			t.Fatalf("segment %q: %v", s, err)
		}
		segs[i] = d
	}
	return segs
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func FuzzRenderURL(f *testing.F) {
	for i, v := range nastyValues {
		f.Add(v, nastyValues[(i+1)%len(nastyValues)], nastyValues[(i+2)%len(nastyValues)], nastyValues[(i+3)%len(nastyValues)])
	}
	tmpl, err := ParseURL(fuzzURLTemplate)
	if err != nil {
		f.Fatal(err)
	}
	dests := make([]Destination, len(fuzzQueryPresets))
	for i, p := range fuzzQueryPresets {
		if dests[i], err = New(p.cfg); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, clickID, orderID, sub1, sub2 string) {
		c := fuzzConversion(clickID, orderID, sub1, sub2)
		out, err := tmpl.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if u.Scheme != "https" || u.Host != "trk.example.com:8443" || u.User != nil || u.Opaque != "" ||
			u.Fragment != "" || strings.Contains(out, "#") {
			t.Fatalf("scheme, host or fragment changed: %s", out)
		}
		wantSegs := []string{"", "base", sub1, "x" + sub2 + "y", "end"}
		if got := escapedSegments(t, u); !reflect.DeepEqual(got, wantSegs) {
			t.Fatalf("path segments %q, want %q (%s)", got, wantSegs, out)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			t.Fatalf("query of %s: %v", out, err)
		}
		want := url.Values{"cid": {clickID}, "oid": {orderID}, "s1": {sub1}, "fixed": {"a b"}, "t": {"0"}}
		if !reflect.DeepEqual(q, want) {
			t.Fatalf("query %v, want %v (%s)", q, want, out)
		}

		// The presets: same scheme, host and path as with a plain click,
		// the same parameter names, and the click ID round-trips.
		plain := fuzzConversion("x", nonEmpty(orderID), "", "")
		for i, d := range dests {
			got, err := d.Render(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := d.Render(context.Background(), plain)
			gu, err := url.Parse(got.URL)
			if err != nil {
				t.Fatalf("%s: %v", got.URL, err)
			}
			ru, _ := url.Parse(ref.URL)
			if gu.Scheme != ru.Scheme || gu.Host != ru.Host || gu.EscapedPath() != ru.EscapedPath() || gu.Fragment != "" {
				t.Fatalf("%s: %s moved from %s", fuzzQueryPresets[i].cfg.Preset, got.URL, ref.URL)
			}
			gq, err := url.ParseQuery(gu.RawQuery)
			if err != nil {
				t.Fatalf("%s: %v", got.URL, err)
			}
			rq, _ := url.ParseQuery(ru.RawQuery)
			if !reflect.DeepEqual(sortedKeys(gq), sortedKeys(rq)) {
				t.Fatalf("%s: keys %v, want %v", fuzzQueryPresets[i].cfg.Preset, sortedKeys(gq), sortedKeys(rq))
			}
			for k, vs := range gq {
				if len(vs) != 1 {
					t.Fatalf("%s: %s repeated: %v", fuzzQueryPresets[i].cfg.Preset, k, vs)
				}
			}
			if v := gq.Get(fuzzQueryPresets[i].clickKey); v != clickID {
				t.Fatalf("%s: click %q, want %q", fuzzQueryPresets[i].cfg.Preset, v, clickID)
			}
		}
	})
}

// nonEmpty keeps a value's presence (optional fields drop empty values)
// while making it harmless.
func nonEmpty(s string) string {
	if s == "" {
		return ""
	}
	return "x"
}

const fuzzJSONTemplate = `{"click":"{click_id}","order":"{order_id}","n":{"s":"{sub1}","list":["{sub1}",{amount}]},"amount":{amount},"lit":"{{x}}"}`

func FuzzRenderJSON(f *testing.F) {
	for i, v := range nastyValues {
		f.Add(v, nastyValues[(i+1)%len(nastyValues)], nastyValues[(i+2)%len(nastyValues)], int64(i*12345-50000), uint8(i%9), i%3 != 0)
	}
	f.Add("x", "y", "z", int64(math.MaxInt64), uint8(8), true)
	f.Add("x", "y", "z", int64(math.MinInt64), uint8(0), true) // the most negative amount formats too
	tmpl, err := ParseJSON(fuzzJSONTemplate)
	if err != nil {
		f.Fatal(err)
	}
	var apis []Destination
	for _, cfg := range []Config{
		{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"}},
		{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G", "api_secret": "s"}},
		{Preset: "tiktok", Params: map[string]string{"pixel_code": "C", "access_token": "t"}},
		{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "t"}},
		{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}},
		{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}},
		{Preset: "reddit", Params: map[string]string{"ad_account_id": "a", "access_token": "t"}},
		{Preset: "posthog", Params: map[string]string{"api_key": "phc_x"}},
		{Preset: "plausible", Params: map[string]string{"site": "shop.example.com"}},
		{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}},
		{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}},
	} {
		apis = append(apis, mustNew(f, cfg))
	}
	f.Fuzz(func(t *testing.T, clickID, orderID, sub1 string, coef int64, scale uint8, hasAmount bool) {
		c := fuzzConversion(clickID, orderID, sub1, "")
		c.Order.Amount = order.Decimal{Coef: coef, Scale: scale % 9}
		c.Order.HasAmount = hasAmount
		c.Order.Customer = order.NewCustomer(order.CustomerInfo{Email: sub1, FullName: sub1, City: sub1})
		c.Touchpoint.LandingURL = "https://shop.example.com/?q=" + sub1
		out, err := tmpl.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber()
		var v map[string]any
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("invalid JSON %s: %v", out, err)
		}
		if got := strings.Join(sortedMapKeys(v), ","); got != "amount,click,lit,n,order" {
			t.Fatalf("keys %s in %s", got, out)
		}
		n, _ := v["n"].(map[string]any)
		if got := strings.Join(sortedMapKeys(n), ","); got != "list,s" {
			t.Fatalf("nested keys %s in %s", got, out)
		}
		if utf8.ValidString(clickID) && v["click"] != clickID {
			t.Fatalf("click %q, want %q", v["click"], clickID)
		}
		if utf8.ValidString(orderID) && v["order"] != orderID {
			t.Fatalf("order %q, want %q", v["order"], orderID)
		}
		if v["lit"] != "{x}" {
			t.Fatalf("lit %q", v["lit"])
		}
		wantAmount := any(nil)
		if hasAmount {
			wantAmount = json.Number(c.Order.Amount.ForCurrency("USD"))
		}
		if v["amount"] != wantAmount {
			t.Fatalf("amount %v, want %v", v["amount"], wantAmount)
		}
		for _, d := range apis {
			r, err := d.Render(context.Background(), c)
			if errors.Is(err, ErrRejected) {
				continue // a platform's limit (an order without an amount)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid([]byte(r.Body)) {
				t.Fatalf("%s: invalid JSON %s", r.URL, r.Body)
			}
		}
	})
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
