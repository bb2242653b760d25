package module_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/detect/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return b
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pagesConfig reads orders from response bodies with several rules.
func pagesConfig(storage, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&a={amount}&cur={currency}&cp={coupon}"
		}
	}
}

:%d {
	encode gzip
	postback {
		conversion purchase {
			match path /checkout/order-received/*
			from ga4
		}
		conversion purchase {
			match path /checkout/onepage/success/
			from magento
		}
		conversion purchase {
			match path /api/orders/*
			from json {
				order_id data.order.id
				amount data.order.totals.grand_total minor
				currency data.order.totals.currency
				coupon data.order.discount.code
			}
		}
		conversion purchase {
			match path /small/*
			from ga4
			max_body 16KiB
		}
	}
	reverse_proxy %s
}
`, globalHead(), storage, netURL, httpPort, upstream)
}

// landed returns a visitor who arrived with a click ID.
func landed(t *testing.T, click string) *http.Client {
	v := visitor(t)
	if resp, _ := get(t, v, "/?clickid="+click); resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("no session cookie after landing")
	}
	return v
}

// fetchRaw GETs path with an explicit Accept-Encoding, so the client
// receives the bytes exactly as sent, compressed or not.
func fetchRaw(t *testing.T, c *http.Client, path, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d%s", httpPort, path), nil)
	req.Header.Set("Accept-Encoding", acceptEncoding)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestOrdersFromPages(t *testing.T) {
	net := newNetwork(t)
	woo := testdata(t, "woocommerce-thankyou.html")
	magento := testdata(t, "magento-success.html")
	spa := testdata(t, "spa-order.json")
	encoded := map[string][]byte{}
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/checkout/order-received/727/": func(w http.ResponseWriter, r *http.Request) {
			enc := r.URL.Query().Get("enc")
			body := woo
			if enc != "" {
				body = compress(t, enc, woo)
				w.Header().Set("Content-Encoding", enc)
			}
			encoded[enc] = body
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			_, _ = w.Write(body)
		},
		"/checkout/onepage/success/": htmlPage(magento),
		"/api/orders/100482": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(spa)
		},
	})
	mustLoad(t, pagesConfig(t.TempDir(), net.URL, hostPort(up)))

	// The same WooCommerce order page, compressed three ways by the
	// upstream: the client gets the upstream's bytes unchanged, the order is
	// read once, and revisits fire nothing.
	v := landed(t, "woo1")
	for _, enc := range []string{"gzip", "br", "zstd", ""} {
		resp, body := fetchRaw(t, v, "/checkout/order-received/727/?key=wc_order_58d2d042d1d&enc="+enc, enc)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != enc || !bytes.Equal(body, encoded[enc]) {
			t.Fatalf("%q: status %d encoding %q, body changed: %v", enc, resp.StatusCode, resp.Header.Get("Content-Encoding"), !bytes.Equal(body, encoded[enc]))
		}
	}
	got := net.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0] != "/pb?c=woo1&o=727&a=1249.90&cur=USD&cp=WELCOME10" {
		t.Fatalf("WooCommerce: %q", got)
	}

	v = landed(t, "mag1")
	get(t, v, "/checkout/onepage/success/")
	got = net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 || got[1] != "/pb?c=mag1&o=000000042&a=1234.50&cur=EUR&cp=H20" {
		t.Fatalf("Magento: %q", got)
	}

	v = landed(t, "spa1")
	get(t, v, "/api/orders/100482")
	got = net.waitFor(t, 3, 5*time.Second)
	if len(got) != 3 || got[2] != "/pb?c=spa1&o=ord_01HV6QZ8K3M2&a=123.95&cur=EUR&cp=SPRING24" {
		t.Fatalf("JSON API: %q", got)
	}
}

func TestStreamingAndCaps(t *testing.T) {
	net := newNetwork(t)
	firstSeen := make(chan struct{})
	purchase := `<script>dataLayer.push({event:'purchase',ecommerce:{transaction_id:'%s',value:10,currency:'EUR'}});</script>`
	filler := "<p>" + strings.Repeat("lorem ipsum ", 2000) + "</p>\n" // ~24 KB
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		// A page streamed in flushed chunks: the first chunk must reach the
		// client while the upstream is still waiting to send the rest.
		"/checkout/order-received/9/": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body><h1>Thanks</h1>")
			w.(http.Flusher).Flush()
			select {
			case <-firstSeen:
			case <-time.After(5 * time.Second):
				return // the client never saw the first chunk: the test fails below
			}
			for range 3 {
				_, _ = io.WriteString(w, filler)
				w.(http.Flusher).Flush()
			}
			_, _ = fmt.Fprintf(w, purchase+"</body></html>", "S9")
		},
		"/small/early": htmlPage(fmt.Sprintf(purchase+filler+filler, "E1")),
		"/small/late":  htmlPage(fmt.Sprintf(filler+filler+purchase, "L1")),
		"/checkout/order-received/bad/": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = io.WriteString(w, "this is not gzip at all")
		},
	})
	mustLoad(t, pagesConfig(t.TempDir(), net.URL, hostPort(up)))
	v := landed(t, "stream1")

	req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/checkout/order-received/9/", httpPort), nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := v.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("<html><body><h1>Thanks</h1>"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	close(firstSeen)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(rest), "S9") {
		t.Fatal("the page was not passed on whole")
	}

	get(t, v, "/small/early")
	get(t, v, "/small/late") // the purchase lies beyond the 16 KiB cap
	resp, body := fetchRaw(t, v, "/checkout/order-received/bad/", "gzip")
	if resp.StatusCode != 200 || string(body) != "this is not gzip at all" {
		t.Fatalf("corrupt gzip must pass unchanged: %d %q", resp.StatusCode, body)
	}
	got := net.waitFor(t, 2, 5*time.Second)
	all := strings.Join(got, " ")
	if len(got) != 2 || !strings.Contains(all, "o=S9") || !strings.Contains(all, "o=E1") {
		t.Fatalf("postbacks %q: want S9 and E1 only", got)
	}
}
