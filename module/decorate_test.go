package module

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestIsHTML(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html":                  true,
		"text/html; charset=utf-8":   true,
		"TEXT/HTML;charset=UTF-8":    true,
		" text/html ; charset=utf-8": true,
		"text/htmlx":                 false,
		"text/plain":                 false,
		"application/xhtml+xml":      false,
		"":                           false,
		"text/htm":                   false,
	} {
		if got := isHTML(ct); got != want {
			t.Errorf("isHTML(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestDecoratorResponses: which responses the decorator changes, and how
// it marks them.
func TestDecoratorResponses(t *testing.T) {
	h := &Handler{Decorate: []*Decoration{{Host: "Buy.Stripe.com", Provider: "stripe"}}, logger: zap.NewNop()}
	if err := h.provisionDecorations(); err != nil {
		t.Fatal(err)
	}
	const page = `<a href="https://buy.stripe.com/x">Buy</a>`
	const decorated = `<a href="https://buy.stripe.com/x?client_reference_id=REF">Buy</a>`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(page))
	_ = zw.Close()
	for _, tc := range []struct {
		name       string
		ref        string
		setsCookie bool
		status     int
		header     http.Header
		body       []byte
		wantBody   string
		wantCache  string // "" : unchanged
		wantVary   string
	}{
		{"html", "REF", false, 200, http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, max-age=3600"}, "Content-Length": {"41"}},
			[]byte(page), decorated, "private, max-age=3600", "Cookie"},
		{"gzip from an upstream that ignored identity", "REF", false, 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}},
			gz.Bytes(), decorated, "private", "Cookie"},
		{"error page", "REF", false, 404, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, []byte(page), decorated, "private", "Cookie"},
		{"json", "REF", false, 200, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"public"}}, []byte(page), page, "", ""},
		{"a byte range", "REF", false, 206, http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public"}}, []byte(page), page, "", ""},
		{"unknown encoding", "REF", false, 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"compress"}, "Cache-Control": {"public"}}, []byte(page), page, "", ""},
		{"json setting the cookie", "REF", true, 200, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"public, s-maxage=600"}}, []byte(page), page, "private", ""},
		{"cookie only, no decoration", "", true, 200, http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, max-age=60"}}, []byte(page), page, "private, max-age=60", ""},
	} {
		rec := httptest.NewRecorder()
		d := h.newDecorator(rec, tc.ref, tc.ref != "", tc.setsCookie, func() bool { return true })
		for k, v := range tc.header {
			d.Header()[k] = v
		}
		d.WriteHeader(tc.status)
		// Written in small pieces, as a proxy streams.
		for b := tc.body; len(b) > 0; b = b[min(5, len(b)):] {
			if _, err := d.Write(b[:min(5, len(b))]); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		d.close()
		res := rec.Result()
		if got := rec.Body.String(); got != tc.wantBody {
			t.Errorf("%s: body %q, want %q", tc.name, got, tc.wantBody)
		}
		wantCache := tc.wantCache
		if wantCache == "" {
			wantCache = tc.header.Get("Cache-Control")
		}
		if got := res.Header.Get("Cache-Control"); got != wantCache {
			t.Errorf("%s: Cache-Control %q, want %q", tc.name, got, wantCache)
		}
		if got := res.Header.Get("Vary"); got != tc.wantVary {
			t.Errorf("%s: Vary %q, want %q", tc.name, got, tc.wantVary)
		}
		if tc.wantBody != page {
			if res.Header.Get("Content-Length") != "" || res.Header.Get("Content-Encoding") != "" {
				t.Errorf("%s: a changed body kept Content-Length %q or Content-Encoding %q", tc.name,
					res.Header.Get("Content-Length"), res.Header.Get("Content-Encoding"))
			}
		}
	}
}

// TestDecoratorFlush: a flush from upstream passes on what is held.
func TestDecoratorFlush(t *testing.T) {
	h := &Handler{Decorate: []*Decoration{{Host: "buy.stripe.com", Provider: "stripe"}}, logger: zap.NewNop()}
	if err := h.provisionDecorations(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d := h.newDecorator(rec, "REF", true, false, func() bool { return true })
	d.Header().Set("Content-Type", "text/html")
	_, _ = d.Write([]byte(`<p>first</p><a href="https://buy.str`))
	if got := rec.Body.String(); got != `<p>first</p><a href="` {
		t.Fatalf("before the flush: %q", got)
	}
	if err := http.NewResponseController(d).Flush(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != `<p>first</p><a href="https://buy.str` || !rec.Flushed {
		t.Fatalf("after the flush: %q, flushed %v", got, rec.Flushed)
	}
	d.close()
}

func TestProvisionDecorations(t *testing.T) {
	for _, tc := range []struct {
		d    Decoration
		want string
	}{
		{Decoration{Host: "buy.stripe.com", Provider: "stripe"}, ""},
		{Decoration{Host: "x.example", Param: "ref"}, ""},
		{Decoration{Host: "https://buy.stripe.com", Provider: "stripe"}, "bare host name"},
		{Decoration{Host: "buy.stripe.com", Provider: "paypal"}, "known providers"},
	} {
		h := &Handler{Decorate: []*Decoration{&tc.d}}
		err := h.provisionDecorations()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.d, err, tc.want)
		}
	}
	// Marketplaces: the pass-through parameter each one hands back, and
	// ClickBank's HopLinks with the reference in a form its tid keeps.
	for _, tc := range []struct {
		host, provider, param string
		encoded               bool
	}{
		{"vendor.pay.clickbank.net", "clickbank", "pb_session", false},
		{"aff.vendor.hop.clickbank.net", "ClickBank", "tid", true},
		{"www.jvzoo.com", "jvzoo", "pb_session", false},
		{"warriorplus.com", "warriorplus", "s", false},
	} {
		h := &Handler{Decorate: []*Decoration{{Host: tc.host, Provider: tc.provider}}}
		if err := h.provisionDecorations(); err != nil {
			t.Fatal(err)
		}
		got := h.targets[0]
		if got.Param != tc.param || (got.Encode != nil) != tc.encoded {
			t.Errorf("%s %s: param %q, encoded %v", tc.provider, tc.host, got.Param, got.Encode != nil)
		}
		if tc.encoded {
			if tid := got.Encode(strings.Repeat("Ab9_", 11)); !regexp.MustCompile(`^pb[a-z2-7]+$`).MatchString(tid) {
				t.Errorf("HopLink tid %q is not what ClickBank keeps", tid)
			}
		}
	}
}
