package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// upstream is the shop behind Caddy and, on the same listener, the mock
// affiliate network that receives the postbacks. It runs in this process so
// the comparison needs nothing but Go.
type upstream struct {
	srv       *http.Server
	addr      string
	postbacks atomic.Int64 // postbacks received from the "with" Caddy
	webhooks  atomic.Int64 // webhooks that reached the shop ("without" Caddy)
}

// Page sizes. The landing page is small on purpose: the smaller the page,
// the larger the directive's share of each request, so the pass-through
// ratio is a conservative one.
const (
	confirmationSize = 300 << 10
	linksPageSize    = 60 << 10
)

var (
	smallPage = []byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A5 dot-grid notebook · Paperfold Studio</title>` +
		`<link rel="stylesheet" href="/assets/app.css"></head><body><header><a href="/">Paperfold Studio</a></header>` +
		`<main><h1>A5 dot-grid notebook</h1><p>120 gsm paper, lay-flat binding, 192 pages.</p><p class="price">$24.00</p>` +
		`<a class="button" href="/checkout">Buy now</a></main><footer>© Paperfold Studio</footer></body></html>`)
	// confirmationHead is all of the 300 KB confirmation page before its GA4
	// purchase push, which sits near the end, as on real shops (scripts
	// after the content).
	confirmationHead []byte
)

func init() {
	var b bytes.Buffer
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Order confirmed · Paperfold Studio</title>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-7RX2Q9PLM1"></script>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} gtag('js', new Date()); gtag('config', 'G-7RX2Q9PLM1');</script>
</head><body><main class="confirmation"><h1>Thanks — your order is confirmed</h1>
`)
	for i := 0; b.Len() < confirmationSize-1500; i++ {
		fmt.Fprintf(&b, "<section class=\"recommendation\"><h2>You may also like item %d</h2><p>Hand-bound in small batches from recycled cotton paper; every sheet takes fountain-pen ink without feathering.</p><a href=\"/products/%d\">See item %d</a></section>\n", i, i, i)
	}
	confirmationHead = b.Bytes()

}

// buildLinksPage makes a product listing of about 60 KB with links buy.stripe.com
// Payment Links spread evenly through it (a pricing or catalogue page).
func buildLinksPage(links int) []byte {
	var b bytes.Buffer
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop · Paperfold Studio</title></head><body><main><h1>Notebooks</h1>` + "\n")
	const article = 160 // bytes of one product entry, roughly
	entries := linksPageSize / article
	every := max(1, entries/max(1, links))
	made := 0
	for i := 0; i < entries || made < links; i++ {
		if i%every == 0 && made < links {
			fmt.Fprintf(&b, "<article class=\"product\"><h2>Notebook %d</h2><p>A5, dot grid, 192 pages.</p><a class=\"buy\" href=\"https://buy.stripe.com/test_6oE%05dAbcD\">Buy for $24</a></article>\n", i, i)
			made++
			continue
		}
		fmt.Fprintf(&b, "<article class=\"product\"><h2>Notebook %d</h2><p>A5, dot grid, 192 pages of 120 gsm paper.</p><a href=\"/products/%d\">Details</a></article>\n", i, i)
	}
	b.WriteString("</main></body></html>\n")
	return b.Bytes()
}

// confirmationTail closes the page with the GA4 purchase event of order id.
func confirmationTail(id string) []byte {
	return []byte(`<script>
gtag("event", "purchase", {transaction_id: "` + id + `", value: 49.90, tax: 4.54, shipping: 5.00, currency: "USD", coupon: "SPRING",
  items: [{item_id: "SKU_A5_DOT", item_name: "A5 dot-grid notebook", price: 24.95, quantity: 2}]});
</script></main></body></html>
`)
}

// startUpstream listens on a free loopback port and serves the shop and the
// mock network.
func startUpstream(links int) (*upstream, error) {
	linksPage := buildLinksPage(links)
	ln, err := listenFree()
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/postback", func(w http.ResponseWriter, _ *http.Request) {
		u.postbacks.Add(1)
		_, _ = io.WriteString(w, "OK")
	})
	mux.HandleFunc("/thank-you", func(w http.ResponseWriter, r *http.Request) {
		tail := confirmationTail(r.URL.Query().Get("order"))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(confirmationHead)+len(tail)))
		_, _ = w.Write(confirmationHead)
		_, _ = w.Write(tail)
	})
	mux.HandleFunc("/links", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(linksPage)))
		_, _ = w.Write(linksPage)
	})
	mux.HandleFunc(webhookPath, func(w http.ResponseWriter, r *http.Request) {
		// Without the directive the webhook reaches the shop, which answers
		// at once: the baseline for the acknowledgement latency.
		_, _ = io.Copy(io.Discard, r.Body)
		u.webhooks.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(smallPage)))
		_, _ = w.Write(smallPage)
	})
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// forbiddenPorts are used by other test suites on this machine.
var forbiddenPorts = map[string]bool{"9080": true, "2999": true, "2019": true}

// listenFree listens on a free loopback port other than the forbidden ones.
func listenFree() (net.Listener, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		if !forbiddenPorts[port] {
			return ln, nil
		}
		ln.Close()
	}
	return nil, fmt.Errorf("no free port")
}

// freePort returns a free loopback port for Caddy to listen on. There is a
// window between closing and Caddy binding it; on a quiet loopback it is
// harmless, and a collision shows up as Caddy failing to start.
func freePort() (int, error) {
	ln, err := listenFree()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return strconv.Atoi(port)
}

// hasDecoratedLink reports whether a links page came back with the session
// reference on its checkout links.
func hasDecoratedLink(body []byte) bool {
	return bytes.Contains(body, []byte("client_reference_id="))
}
