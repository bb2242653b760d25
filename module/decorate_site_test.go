package module_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/caddy-postback/caddy-postback/module"
)

// shopPage is a catalogue page as shops write them: checkout links, a link
// an inline script builds, a srcset, JSON-LD and a comment that mention
// the checkout host too.
const shopPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Notebooks · buy.stripe.com</title>
<script type="application/ld+json">{"@context":"https://schema.org","@type":"Product","name":"A5 notebook","offers":{"@type":"Offer","url":"https://buy.stripe.com/test_ld","price":"24.00","priceCurrency":"USD"}}</script>
</head><body><main>
<img src="/img/a5.jpg" srcset="https://buy.stripe.com/img/a5.jpg 1x, https://buy.stripe.com/img/a5@2x.jpg 2x" alt="A5 notebook">
<a class="buy" href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA">Buy the A5</a>
<a class="buy" href='https://buy.stripe.com/test_4gw5kp?prefilled_email=a%40b.c&amp;locale=en#pay'>Buy the A4</a>
<a href="https://buy.stripe.com.evil.example/x">Not a checkout</a>
<div class="card" data-href="https://buy.stripe.com/test_data">Gift card</div>
<a id="dyn" class="buy">Buy the A6</a>
<script>
  var id = "test_6oE00000AbcD";
  document.getElementById("dyn").href = "https://buy.stripe.com/" + id;
  document.querySelector("main").insertAdjacentHTML("beforeend", '<a href="https://buy.stripe.com/' + id + '">Again</a>');
</script>
<!-- old link: <a href="https://buy.stripe.com/test_old">Buy</a> -->
` + `<p>` + "A5, dot grid, 192 pages of 120 gsm paper. " + `</p>` + `
</main></body></html>
`

// decoratedShopPage is shopPage for a visitor whose reference is ref: the
// two checkout links decorated, every other byte as it was.
func decoratedShopPage(ref string) string {
	return strings.NewReplacer(
		`href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA"`, `href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA?client_reference_id=`+ref+`"`,
		`href='https://buy.stripe.com/test_4gw5kp?prefilled_email=a%40b.c&amp;locale=en#pay'`, `href='https://buy.stripe.com/test_4gw5kp?prefilled_email=a%40b.c&amp;locale=en&amp;client_reference_id=`+ref+`#pay'`,
	).Replace(shopPage)
}

func decompress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "", "identity":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("no decoder for %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

// compressingShop serves shopPage compressed with the ?enc= coding: under
// /honour/ only if the request's Accept-Encoding allows it, as real shops
// do, under /ignore/ always. It records the Accept-Encoding it was sent.
type compressingShop struct {
	mu     sync.Mutex
	accept []string
}

func (s *compressingShop) serve(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ae := r.Header.Get("Accept-Encoding")
		s.mu.Lock()
		s.accept = append(s.accept, ae)
		s.mu.Unlock()
		enc := r.URL.Query().Get("enc")
		if strings.HasPrefix(r.URL.Path, "/honour/") && !strings.Contains(ae, enc) {
			enc = ""
		}
		body := compress(t, enc, []byte(shopPage))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
			w.Header().Set("Vary", "Accept-Encoding")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
}

func (s *compressingShop) lastAccept() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accept[len(s.accept)-1]
}

func decorateConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}"
		}
	}
}

:%d {
	encode zstd gzip
	postback {
		decorate buy.stripe.com stripe
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, upstream)
}

// sessionRef is the visitor's session reference: their cookie's value.
func sessionRef(t *testing.T, c *http.Client) string {
	t.Helper()
	for _, ck := range c.Jar.Cookies(mustURL(t)) {
		if ck.Name == module.DefaultCookieName {
			return ck.Value
		}
	}
	t.Fatal("the visitor has no session cookie")
	return ""
}

// TestDecoratedShopPages: a shop that compresses, as every real shop does,
// gets its checkout links decorated for a visitor with a session, and only
// those: scripts, srcset and JSON pass byte for byte. The page is still
// compressed for a client that asks, and marked so that no shared cache
// keeps it. A visitor without a session gets the upstream's page untouched.
func TestDecoratedShopPages(t *testing.T) {
	net := newNetwork(t)
	s := &compressingShop{}
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/honour/pricing": s.serve(t),
		"/ignore/pricing": s.serve(t),
	})
	mustLoad(t, decorateConfig(t.TempDir(), net.URL, hostPort(up)))
	v := landed(t, "deco1")
	want := decoratedShopPage(sessionRef(t, v))

	for _, mode := range []string{"honour", "ignore"} {
		for _, enc := range []string{"gzip", "br", "zstd"} {
			for _, clientAccepts := range []string{"gzip", "identity"} {
				name := fmt.Sprintf("%s %s, client accepts %s", mode, enc, clientAccepts)
				resp, raw := fetchRaw(t, v, "/"+mode+"/pricing?enc="+enc, clientAccepts)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: status %d", name, resp.StatusCode)
				}
				if mode == "honour" && s.lastAccept() != "identity" {
					t.Errorf("%s: the upstream was asked for %q, want identity", name, s.lastAccept())
				}
				if got := resp.Header.Get("Content-Encoding"); got != strings.TrimPrefix(clientAccepts, "identity") {
					t.Errorf("%s: Content-Encoding %q, want what the client asked for", name, got)
				}
				if got := string(decompress(t, resp.Header.Get("Content-Encoding"), raw)); got != want {
					t.Errorf("%s: the page is not the shop's page with its two checkout links decorated:\n%s", name, got)
				}
				if got := resp.Header.Get("Cache-Control"); got != "private, max-age=3600" {
					t.Errorf("%s: Cache-Control %q, want private, max-age=3600", name, got)
				}
				if vary := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(vary, "Cookie") {
					t.Errorf("%s: Vary %q lacks Cookie", name, vary)
				}
			}
		}
	}

	// A visitor without a session: the upstream's response as it was,
	// compression, caching and all.
	plain := visitor(t)
	for _, enc := range []string{"gzip", "br", "zstd"} {
		resp, raw := fetchRaw(t, plain, "/honour/pricing?enc="+enc, enc)
		if resp.Header.Get("Content-Encoding") != enc || s.lastAccept() != enc {
			t.Errorf("no session, %s: the upstream's compression was not passed through (%q, upstream asked %q)",
				enc, resp.Header.Get("Content-Encoding"), s.lastAccept())
		}
		if got := string(decompress(t, enc, raw)); got != shopPage {
			t.Errorf("no session, %s: the page changed", enc)
		}
		if cc, vary := resp.Header.Get("Cache-Control"), strings.Join(resp.Header.Values("Vary"), ","); cc != "public, max-age=3600" || strings.Contains(vary, "Cookie") {
			t.Errorf("no session, %s: Cache-Control %q, Vary %q: want the upstream's", enc, cc, vary)
		}
	}
}

// TestDecoratedPageStreams: a page the upstream flushes in parts reaches the
// visitor part by part, decorated, whether it comes plain or (from an
// upstream that ignores the request for identity) gzip-compressed.
func TestDecoratedPageStreams(t *testing.T) {
	net := newNetwork(t)
	const first = `<html><body><a href="https://buy.stripe.com/test_first">Buy</a>`
	const second = `<p>later</p><a href="https://buy.stripe.com/test_second">Buy</a></body></html>`
	seen := make(chan struct{}, 1)
	streamed := func(compressed bool) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			var out io.Writer = w
			var gz *gzip.Writer
			if compressed {
				w.Header().Set("Content-Encoding", "gzip")
				gz = gzip.NewWriter(w)
				out = gz
			}
			_, _ = io.WriteString(out, first)
			if gz != nil {
				_ = gz.Flush()
			}
			w.(http.Flusher).Flush()
			select {
			case <-seen:
			case <-time.After(5 * time.Second):
				return // the visitor never got the first part: the test fails
			}
			_, _ = io.WriteString(out, second)
			if gz != nil {
				_ = gz.Close()
			}
		}
	}
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/plain":   streamed(false),
		"/gzipped": streamed(true),
	})
	mustLoad(t, decorateConfig(t.TempDir(), net.URL, hostPort(up)))
	v := landed(t, "stream2")
	ref := sessionRef(t, v)
	wantFirst := strings.Replace(first, "test_first", "test_first?client_reference_id="+ref, 1)
	wantSecond := strings.Replace(second, "test_second", "test_second?client_reference_id="+ref, 1)
	for _, path := range []string{"/plain", "/gzipped"} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d%s", httpPort, path), nil)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := v.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(wantFirst))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != wantFirst {
			t.Fatalf("%s: the first part arrived as %q (%v), want %q", path, got, err, wantFirst)
		}
		seen <- struct{}{}
		rest, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(rest) != wantSecond {
			t.Fatalf("%s: the rest arrived as %q, want %q", path, rest, wantSecond)
		}
	}
}

// TestSessionCookieResponseIsPrivate: the response that sets the session
// cookie is never one a shared cache may keep, although the upstream wrote
// its Cache-Control after the cookie was added; responses that set no
// cookie keep the upstream's.
func TestSessionCookieResponseIsPrivate(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "public, max-age=600, s-maxage=3600")
			_, _ = io.WriteString(w, "<html><body>Welcome</body></html>")
		},
	})
	mustLoad(t, fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}"
		}
	}
}

:%d {
	postback
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, httpPort, hostPort(up)))
	v := visitor(t)
	resp, _ := get(t, v, "/?clickid=cached1")
	if resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("no session cookie")
	}
	if got := resp.Header.Get("Cache-Control"); got != "private, max-age=600" {
		t.Errorf("the response setting the cookie: Cache-Control %q, want private, max-age=600", got)
	}
	// The same visitor again, with the cookie and no click: nothing of
	// theirs in the response, which stays as the upstream sent it.
	for _, c := range []*http.Client{v, visitor(t)} {
		resp, _ = get(t, c, "/")
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=600, s-maxage=3600" || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("a response that sets no cookie: Cache-Control %q, want the upstream's", got)
		}
	}
}
