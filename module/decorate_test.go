package module

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDecorateAcrossWrites: links split across writes at every possible
// byte are decorated exactly as when written whole.
func TestDecorateAcrossWrites(t *testing.T) {
	h := &Handler{Decorate: []*Decoration{{Host: "buy.stripe.com", Provider: "stripe"}, {Host: "shop.lemonsqueezy.com", Provider: "lemonsqueezy"}}}
	if err := h.provisionDecorations(); err != nil {
		t.Fatal(err)
	}
	page := `<p>x</p><a href="https://buy.stripe.com/abc">A</a> <a href='//shop.lemonsqueezy.com/checkout/buy/1?embed=1&amp;x=2#top'>B</a>
<a href="https://buy.stripe.com/abc?client_reference_id=keep">C</a> https://buy.stripe.com.evil.example/x <a href="https://buy.stripe.com">D</a>`
	want := `<p>x</p><a href="https://buy.stripe.com/abc?client_reference_id=REF">A</a> <a href='//shop.lemonsqueezy.com/checkout/buy/1?embed=1&amp;x=2&amp;checkout%5Bcustom%5D%5Bpb_session%5D=REF#top'>B</a>
<a href="https://buy.stripe.com/abc?client_reference_id=keep">C</a> https://buy.stripe.com.evil.example/x <a href="https://buy.stripe.com?client_reference_id=REF">D</a>`
	for _, size := range []int{len(page), 1, 2, 3, 7, 16} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "text/html; charset=utf-8")
		rec.Header().Set("Content-Length", "123")
		w := h.decorateWriter(rec, "REF").(*decorator)
		for i := 0; i < len(page); i += size {
			if n, err := w.Write([]byte(page[i:min(i+size, len(page))])); err != nil || n != min(size, len(page)-i) {
				t.Fatalf("write: %d %v", n, err)
			}
		}
		w.finish()
		if got := rec.Body.String(); got != want {
			t.Fatalf("writes of %d bytes:\n got %s\nwant %s", size, got, want)
		}
		if rec.Header().Get("Content-Length") != "" {
			t.Fatal("Content-Length kept on a decorated page")
		}
	}
	// Compressed or non-HTML responses pass unchanged.
	for _, hdr := range []http.Header{{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}, {"Content-Type": {"application/json"}}} {
		rec := httptest.NewRecorder()
		for k, v := range hdr {
			rec.Header()[k] = v
		}
		w := h.decorateWriter(rec, "REF")
		_, _ = w.Write([]byte(page))
		w.(*decorator).finish()
		if rec.Body.String() != page {
			t.Errorf("%v: body changed", hdr)
		}
	}
	// A visitor without a session reference gets the writer untouched.
	plain := httptest.NewRecorder()
	if h.decorateWriter(plain, "") != http.ResponseWriter(plain) {
		t.Fatal("decorating for a visitor without a session")
	}
}

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
