package module_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConsentAndIPTruncation: with consent gating, a visitor without the
// consent cookie gets no session cookie and no capture; with it, the click
// is captured, and the postback carries a truncated client IP.
func TestConsentAndIPTruncation(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		consent {
			purpose tracking cc_cookie ^yes$
			require tracking
		}
		truncate_ip
		cookie {
			name sid
			domain localhost
			secret "0123456789abcdef0123456789abcdef-long-enough"
			lifetime 7d
		}
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&ip={ip}"
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
		}
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, httpPort, hostPort(up))
	mustLoad(t, cfg)

	// No consent: nothing captured, no cookie.
	v := visitor(t)
	resp, _ := get(t, v, "/?clickid=noconsent")
	if sc := resp.Header.Get("Set-Cookie"); sc != "" {
		t.Fatalf("cookie without consent: %q", sc)
	}

	// Consent given.
	v = visitor(t)
	u, _ := url.Parse(fmt.Sprintf("http://localhost:%d/", httpPort))
	v.Jar.SetCookies(u, []*http.Cookie{{Name: "cc_cookie", Value: "yes"}})
	resp, _ = get(t, v, "/?clickid=consented")
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"sid=", "Domain=localhost", "Max-Age=604800"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	get(t, v, "/thank-you?order=P1")
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/pb?c=consented&o=P1&ip=127.0.0.0" {
		t.Fatalf("postbacks %q: want the consented click with a /24 IP", got)
	}
}

// TestGumroadTokenPath: Gumroad signs nothing, so the secret token is the
// endpoint's last path segment; a wrong token is refused.
func TestGumroadTokenPath(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/": htmlPage(`<a href="https://seller.gumroad.com/l/course">Buy</a>`),
	})
	const token = "gr_token_0123456789abcdef"
	cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&a={amount}"
		}
	}
}

:%d {
	postback {
		webhook /hooks/gumroad gumroad %s
		decorate seller.gumroad.com gumroad
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, httpPort, token, hostPort(up))
	mustLoad(t, cfg)
	v := visitor(t)
	_, page := get(t, v, "/?clickid=gum1")
	i := strings.Index(page, "pb_session=")
	if i < 0 {
		t.Fatalf("gumroad link not decorated: %s", page)
	}
	ref := page[i+len("pb_session="):]
	ref = ref[:strings.IndexAny(ref, `"&`)]
	form := url.Values{"sale_id": {"S-1"}, "price": {"2500"}, "currency": {"usd"}, "url_params[pb_session]": {ref},
		"email": {"kim@example.org"}, "product_permalink": {"course"}}
	postForm := func(path string) int {
		resp, err := http.PostForm(fmt.Sprintf("http://localhost:%d%s", httpPort, path), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := postForm("/hooks/gumroad/not-the-token-at-all"); status != 401 {
		t.Fatalf("a wrong token: %d, want 401 (and never passed on to the site)", status)
	}
	if status := postForm("/hooks/gumroad/" + token); status != 200 {
		t.Fatalf("ping with the token: %d", status)
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/pb?c=gum1&o=S-1&a=25.00" {
		t.Fatalf("postbacks %q", got)
	}
}
