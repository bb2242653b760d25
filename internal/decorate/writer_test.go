package decorate

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

var testTargets = []Target{
	{Host: "buy.stripe.com", Param: "client_reference_id"},
	{Host: "shop.lemonsqueezy.com", Param: "checkout[custom][pb_session]"},
	{Host: "seller.gumroad.com", Param: "pb_session"},
}

const (
	testRef = "REF"
	stripe  = "client_reference_id=REF"
	lemon   = "checkout%5Bcustom%5D%5Bpb_session%5D=REF"
)

// decorateCase is a page and what a visitor with the reference REF gets.
type decorateCase struct {
	name string
	in   string
	want string // "" means unchanged
}

var decorateCases = []decorateCase{
	// Links that are decorated.
	{"double quoted", `<a href="https://buy.stripe.com/abc">Buy</a>`, `<a href="https://buy.stripe.com/abc?` + stripe + `">Buy</a>`},
	{"single quoted", `<a href='https://buy.stripe.com/abc'>Buy</a>`, `<a href='https://buy.stripe.com/abc?` + stripe + `'>Buy</a>`},
	{"unquoted", `<a href=https://buy.stripe.com/abc>Buy</a>`, `<a href=https://buy.stripe.com/abc?` + stripe + `>Buy</a>`},
	{"unquoted then attribute", `<a href=https://buy.stripe.com/abc/ class=b>`, `<a href=https://buy.stripe.com/abc/?` + stripe + ` class=b>`},
	{"host only", `<a href="https://buy.stripe.com">`, `<a href="https://buy.stripe.com?` + stripe + `">`},
	{"http", `<a href="http://buy.stripe.com/x">`, `<a href="http://buy.stripe.com/x?` + stripe + `">`},
	{"protocol-relative", `<a href="//buy.stripe.com/x">`, `<a href="//buy.stripe.com/x?` + stripe + `">`},
	{"upper-case tag, attribute, scheme and host", `<A HREF="HTTPS://BUY.STRIPE.COM/x">`, `<A HREF="HTTPS://BUY.STRIPE.COM/x?` + stripe + `">`},
	{"port", `<a href="https://buy.stripe.com:443/x">`, `<a href="https://buy.stripe.com:443/x?` + stripe + `">`},
	{"user information before the host", `<a href="https://u@buy.stripe.com/x">`, `<a href="https://u@buy.stripe.com/x?` + stripe + `">`},
	{"query with &amp;", `<a href="https://buy.stripe.com/x?a=1&amp;b=2">`, `<a href="https://buy.stripe.com/x?a=1&amp;b=2&amp;` + stripe + `">`},
	{"query with a bare &", `<a href="https://buy.stripe.com/x?a=1&b=2">`, `<a href="https://buy.stripe.com/x?a=1&b=2&amp;` + stripe + `">`},
	{"empty query", `<a href="https://buy.stripe.com/x?">`, `<a href="https://buy.stripe.com/x?` + stripe + `">`},
	{"query ending in &amp;", `<a href="https://buy.stripe.com/x?a=1&amp;">`, `<a href="https://buy.stripe.com/x?a=1&amp;` + stripe + `">`},
	{"fragment", `<a href="https://buy.stripe.com/x?a=1#top">`, `<a href="https://buy.stripe.com/x?a=1&amp;` + stripe + `#top">`},
	{"fragment without query", `<a href='https://buy.stripe.com#pay'>`, `<a href='https://buy.stripe.com?` + stripe + `#pay'>`},
	{"fragment as a reference", `<a href="https://buy.stripe.com/x&#35;top">`, `<a href="https://buy.stripe.com/x?` + stripe + `&#35;top">`},
	{"colon as a reference", `<a href="https&#58;//buy.stripe.com/x">`, `<a href="https&#58;//buy.stripe.com/x?` + stripe + `">`},
	{"spaces around the value", `<a href="  https://buy.stripe.com/x  ">`, `<a href="  https://buy.stripe.com/x?` + stripe + `  ">`},
	{"space before the value", `<a href = "https://buy.stripe.com/x">`, `<a href = "https://buy.stripe.com/x?` + stripe + `">`},
	{"'>' in an earlier value", `<a title=">" href="https://buy.stripe.com/x">`, `<a title=">" href="https://buy.stripe.com/x?` + stripe + `">`},
	{"lemon squeezy", `<a href="https://shop.lemonsqueezy.com/checkout/buy/1?embed=1">`, `<a href="https://shop.lemonsqueezy.com/checkout/buy/1?embed=1&amp;` + lemon + `">`},
	{"gumroad", `<a class="gumroad-button" href="https://seller.gumroad.com/l/course">`, `<a class="gumroad-button" href="https://seller.gumroad.com/l/course?pb_session=REF">`},
	{"area", `<map><area shape=rect href="https://buy.stripe.com/x"></map>`, `<map><area shape=rect href="https://buy.stripe.com/x?` + stripe + `"></map>`},
	{"form action", `<form method=post action="https://buy.stripe.com/x">`, `<form method=post action="https://buy.stripe.com/x?` + stripe + `">`},
	{"button formaction", `<button formaction="https://buy.stripe.com/x">`, `<button formaction="https://buy.stripe.com/x?` + stripe + `">`},
	{"input formaction", `<input type=submit formaction='//buy.stripe.com/x'>`, `<input type=submit formaction='//buy.stripe.com/x?` + stripe + `'>`},
	{"link in svg", `<svg><a href="https://buy.stripe.com/x"><text>Buy</text></a></svg>`, `<svg><a href="https://buy.stripe.com/x?` + stripe + `"><text>Buy</text></a></svg>`},
	{"after an empty comment", `<!--><a href="https://buy.stripe.com/x">`, `<!--><a href="https://buy.stripe.com/x?` + stripe + `">`},
	{"after a script ended by '</script '", `<script>x</script ><a href="https://buy.stripe.com/x">`, `<script>x</script ><a href="https://buy.stripe.com/x?` + stripe + `">`},
	{"after an escaped script", `<script><!-- x --></script><a href="https://buy.stripe.com/x">`, `<script><!-- x --></script><a href="https://buy.stripe.com/x?` + stripe + `">`},
	{"after a self-closing tag", `<br/><a/href="https://buy.stripe.com/x">`, `<br/><a/href="https://buy.stripe.com/x?` + stripe + `">`},

	// Links left alone.
	{"already decorated", `<a href="https://buy.stripe.com/x?client_reference_id=keep">`, ""},
	{"already decorated, escaped name", `<a href="https://buy.stripe.com/x?a=1&amp;client%5Freference%5Fid=keep">`, ""},
	{"already decorated, lemon squeezy brackets", `<a href="https://shop.lemonsqueezy.com/b?checkout[custom][pb_session]=keep">`, ""},
	{"already decorated, lemon squeezy escaped", `<a href="https://shop.lemonsqueezy.com/b?checkout%5Bcustom%5D%5Bpb_session%5D=keep">`, ""},
	{"look-alike: longer host", `<a href="https://buy.stripe.com.evil.example/x">`, ""},
	{"look-alike: longer label", `<a href="https://buy.stripe.community/x">`, ""},
	{"look-alike: prefix", `<a href="https://evilbuy.stripe.com/x">`, ""},
	{"look-alike: user information", `<a href="https://buy.stripe.com@evil.example/x">`, ""},
	{"look-alike: backslash", `<a href="https://evil.example\@buy.stripe.com/x">`, ""},
	{"look-alike: fragment", `<a href="https://evil.example#@buy.stripe.com">`, ""},
	{"look-alike: in the query", `<a href="https://evil.example/?u=https://buy.stripe.com/x">`, ""},
	{"look-alike: bad port", `<a href="https://buy.stripe.com:x/y">`, ""},
	{"three slashes", `<a href="https:///buy.stripe.com/x">`, ""},
	{"relative", `<a href="/buy.stripe.com/x">`, ""},
	{"other scheme", `<a href="ftp://buy.stripe.com/x">`, ""},
	{"javascript", `<a href="javascript:location='https://buy.stripe.com/x'">`, ""},
	{"second href", `<a href="/pricing" href="https://buy.stripe.com/x">`, ""},
	{"data-href", `<a data-href="https://buy.stripe.com/x" hreflang=en>`, ""},
	{"href on a div", `<div href="https://buy.stripe.com/x">`, ""},
	{"link element", `<link rel=preconnect href="https://buy.stripe.com">`, ""},
	{"img src and srcset", `<img src="https://buy.stripe.com/a.png" srcset="https://buy.stripe.com/a.png 1x, https://buy.stripe.com/b.png 2x">`, ""},
	{"action on an a", `<a action="https://buy.stripe.com/x">`, ""},
	{"end tag attribute", `</a href="https://buy.stripe.com/x">`, ""},
	{"inline script concatenation", `<script>var u = "https://buy.stripe.com/" + id; el.innerHTML = '<a href="https://buy.stripe.com/x">';</script>`, ""},
	{"upper-case script", `<SCRIPT>document.write('<a href="https://buy.stripe.com/x">')</SCRIPT>`, ""},
	{"script that is not ended by </scriptx>", `<script>a = "</scriptx><a href='https://buy.stripe.com/x'>"</script>`, ""},
	{"json-ld", `<script type="application/ld+json">{"@type":"Offer","url":"https://buy.stripe.com/x","html":"<a href=\"https://buy.stripe.com/y\">"}</script>`, ""},
	{"double-escaped script", `<script><!-- <script> </script> <a href="https://buy.stripe.com/x"> --></script>`, ""},
	{"escaped script with a tag", `<script><!-- <b> </b> --> <a href="https://buy.stripe.com/x"></script>`, ""},
	{"comment", `<!-- <a href="https://buy.stripe.com/x"> -->`, ""},
	{"comment with dashes", `<!-- -- > --!x <a href="https://buy.stripe.com/x"> ---!>`, ""},
	{"comment opened with a bang", `<!--!> <a href="https://buy.stripe.com/x"> -->`, ""},
	{"bogus comment", `<? <a href="https://buy.stripe.com/x">`, ""},
	{"doctype", `<!DOCTYPE html SYSTEM "<a href='https://buy.stripe.com/x'>">`, ""},
	{"cdata", `<![CDATA[ <a href="https://buy.stripe.com/x"> ]]>`, ""},
	{"style", `<style>a[href="https://buy.stripe.com/x"]{color:red} </styl <a href="https://buy.stripe.com/x"></style>`, ""},
	{"textarea", `<textarea><a href="https://buy.stripe.com/x"></textarea>`, ""},
	{"title", `<title><a href="https://buy.stripe.com/x"></title >`, ""},
	{"noscript", `<noscript><a href="https://buy.stripe.com/x"></noscript>`, ""},
	{"iframe", `<iframe><a href="https://buy.stripe.com/x"></iframe>`, ""},
	{"xmp", `<xmp><a href="https://buy.stripe.com/x"></xmp>`, ""},
	{"plaintext", `<plaintext></plaintext><a href="https://buy.stripe.com/x">`, ""},
	{"text", `Buy at https://buy.stripe.com/x or "https://buy.stripe.com/y"`, ""},
	{"unfinished tag at the end", `<a href="https://buy.stripe.com/x`, ""},
	{"unfinished value at the end", `<a href="https://buy.stripe.com/x`, ""},
}

// decorateString runs page through a Writer in one write.
func decorateString(t testing.TB, page string) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, testTargets, testRef)
	if n, err := w.Write([]byte(page)); err != nil || n != len(page) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

// decorateChunks runs page through a Writer in the given pieces.
func decorateChunks(t testing.TB, chunks [][]byte) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, testTargets, testRef)
	for _, c := range chunks {
		if n, err := w.Write(c); err != nil || n != len(c) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

func TestDecorate(t *testing.T) {
	for _, tc := range decorateCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.in
			}
			if got := decorateString(t, tc.in); got != want {
				t.Errorf("\n in: %s\ngot: %s\nwant %s", tc.in, got, want)
			}
		})
	}
}

// testPage is every case in one page, with text around them.
func testPage() (in, want string) {
	var b, w strings.Builder
	b.WriteString("<!doctype html><html><head><title>Shop</title></head><body>\n")
	w.WriteString("<!doctype html><html><head><title>Shop</title></head><body>\n")
	for _, tc := range decorateCases {
		if strings.HasPrefix(tc.name, "unfinished") || tc.name == "plaintext" {
			continue
		}
		b.WriteString("<p>" + tc.name + "</p>\n" + tc.in + "\n")
		out := tc.want
		if out == "" {
			out = tc.in
		}
		w.WriteString("<p>" + tc.name + "</p>\n" + out + "\n")
	}
	b.WriteString("</body></html>\n")
	w.WriteString("</body></html>\n")
	return b.String(), w.String()
}

func TestDecorateWholePage(t *testing.T) {
	in, want := testPage()
	if got := decorateString(t, in); got != want {
		t.Fatalf("the page of all cases differs from its cases:\n got %s\nwant %s", got, want)
	}
}

// TestSplitAnywhere: a page written in two pieces, split at every byte, or
// in pieces of random sizes, comes out as when written whole.
func TestSplitAnywhere(t *testing.T) {
	pages := []string{}
	for _, tc := range decorateCases {
		pages = append(pages, tc.in)
	}
	page, _ := testPage()
	pages = append(pages, page)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range pages {
		whole := decorateString(t, p)
		for k := 0; k <= len(p); k++ {
			if got := decorateChunks(t, [][]byte{[]byte(p[:k]), []byte(p[k:])}); got != whole {
				t.Fatalf("split at %d:\n got %s\nwant %s", k, got, whole)
			}
		}
		for range 50 {
			var chunks [][]byte
			for rest := []byte(p); len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(24))
				chunks = append(chunks, rest[:n])
				rest = rest[n:]
			}
			if got := decorateChunks(t, chunks); got != whole {
				t.Fatalf("random pieces %d:\n got %s\nwant %s", len(chunks), got, whole)
			}
		}
	}
}

// TestPassedOnAtOnce: after a write, everything but an unfinished link
// value has reached the destination.
func TestPassedOnAtOnce(t *testing.T) {
	for _, tc := range []struct{ write, out string }{
		{`<p>Hello`, `<p>Hello`},
		{`<p>Hello <a`, `<p>Hello <a`},
		{`<a class="buy" hr`, `<a class="buy" hr`},
		{`<a class="buy" href="https://buy.str`, `<a class="buy" href="`},
		{`<a href=https://buy.str`, `<a href=`},
		{`<a title="https://buy.str`, `<a title="https://buy.str`},
		{`<script>var u = "https://buy.str`, `<script>var u = "https://buy.str`},
		{`<img src="https://buy.str`, `<img src="https://buy.str`},
	} {
		var out bytes.Buffer
		w := NewWriter(&out, testTargets, testRef)
		if _, err := w.Write([]byte(tc.write)); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.out {
			t.Errorf("after writing %q the destination has %q, want %q", tc.write, out.String(), tc.out)
		}
		// Flush passes on the held value, which then goes undecorated.
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.write {
			t.Errorf("after Flush the destination has %q, want %q", out.String(), tc.write)
		}
		if _, err := w.Write([]byte(`ipe.com/x">`)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "client_reference_id") {
			t.Errorf("a value flushed half-way was decorated: %q", out.String())
		}
	}
}

// TestLongValue: a value longer than MaxValue passes undecorated, however
// it is written, and no more than MaxValue is held.
func TestLongValue(t *testing.T) {
	long := `<a href="https://buy.stripe.com/x?q=` + strings.Repeat("a", MaxValue) + `">` + `<a href="https://buy.stripe.com/y">`
	want := strings.Replace(long, "/y", "/y?"+stripe, 1)
	if got := decorateString(t, long); got != want {
		t.Fatal("one write: a long value was decorated, or the next link was not")
	}
	var out bytes.Buffer
	w := NewWriter(&out, testTargets, testRef)
	for i := 0; i < len(long); i += 1000 {
		if _, err := w.Write([]byte(long[i:min(i+1000, len(long))])); err != nil {
			t.Fatal(err)
		}
		if len(w.held) > MaxValue {
			t.Fatalf("holding %d bytes", len(w.held))
		}
	}
	_ = w.Close()
	if out.String() != want {
		t.Fatal("in pieces: a long value was decorated, or the next link was not")
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return f.n, errTest
	}
	f.n -= len(p)
	return len(p), nil
}

var errTest = errorString("destination gone")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestDestinationError(t *testing.T) {
	w := NewWriter(&failingWriter{n: 5}, testTargets, testRef)
	if _, err := w.Write([]byte(`<p>hello</p>`)); err != errTest {
		t.Fatalf("Write: %v, want the destination's error", err)
	}
	if _, err := w.Write([]byte(`more`)); err != errTest {
		t.Fatalf("a later Write: %v, want the destination's error", err)
	}
	if err := w.Close(); err != errTest {
		t.Fatalf("Close: %v, want the destination's error", err)
	}
}

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		t  Target
		ok bool
	}{
		{Target{Host: "buy.stripe.com", Param: "client_reference_id"}, true},
		{Target{Host: "", Param: "x"}, false},
		{Target{Host: "https://buy.stripe.com", Param: "x"}, false},
		{Target{Host: "buy.stripe.com/x", Param: "x"}, false},
		{Target{Host: "buy.stripe.com:443", Param: "x"}, false},
		{Target{Host: "buy.stripe.com", Param: ""}, false},
	} {
		if err := tc.t.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.t, err)
		}
	}
}

// countingWriter counts the writes it gets.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// TestOneWriteOut: each write passes on in one write, decorated links and
// all, so that a compressing writer after this one sees the pieces the
// upstream wrote (Caddy's encode decides on the first write's size).
func TestOneWriteOut(t *testing.T) {
	page, want := testPage()
	var out countingWriter
	w := NewWriter(&out, testTargets, testRef)
	pieces := 0
	for rest := page; len(rest) > 0; rest = rest[min(1000, len(rest)):] {
		if _, err := w.Write([]byte(rest[:min(1000, len(rest))])); err != nil {
			t.Fatal(err)
		}
		pieces++
	}
	_ = w.Close()
	if out.String() != want {
		t.Fatal("the page differs")
	}
	// A piece that ends inside a link value holds it back for the next,
	// but never splits a write in two.
	if out.writes > pieces+1 {
		t.Fatalf("%d writes in, %d out", pieces, out.writes)
	}
}

func TestTargetEncodesTheReference(t *testing.T) {
	var out strings.Builder
	w := NewWriter(&out, []Target{{Host: "hop.clickbank.net", Param: "tid", Encode: strings.ToLower}}, "AbC")
	_, _ = w.Write([]byte(`<a href="https://hop.clickbank.net/?affiliate=x">Buy</a>`))
	_ = w.Close()
	if got := out.String(); got != `<a href="https://hop.clickbank.net/?affiliate=x&amp;tid=abc">Buy</a>` {
		t.Fatalf("got %s", got)
	}
}
