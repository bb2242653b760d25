package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stalledClients is how many visitors open a confirmation page and never
// read it.
const stalledClients = 300

// BenchmarkStalledClients measures what slow clients cost: 300 visitors
// with a session open a 1 MB confirmation page whose order is read from
// the body, and never read their answer. Each such page holds a copy for
// inspection while the client stalls; the inspection budget bounds them
// all together. It reports the Caddy process's RSS before and with the
// clients stalled (target: under 100 MB more). Run it with
//
//	go test ./cmd/caddy -run '^$' -bench StalledClients -benchtime 1x
func BenchmarkStalledClients(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc to read the child's memory")
	}
	bin := caddyBinary(b)
	page := []byte("<html><body>" + strings.Repeat("<p>thank you for your order</p>", 1<<20/32) +
		`<script>dataLayer.push({event:"purchase",ecommerce:{transaction_id:"S1",value:49.90,currency:"USD"}});</script></body></html>`)
	var written atomic.Int64
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for off := 0; off < len(page); off += 32 << 10 {
			n, err := w.Write(page[off:min(off+32<<10, len(page))])
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer shop.Close()
	rc := newDurReceiver(b)
	for range b.N {
		dir := b.TempDir()
		adminPort, httpPort := freePort(b), freePort(b)
		cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&order={order_id}"
		}
	}
}

http://:%d {
	bind 127.0.0.1
	postback {
		conversion purchase {
			match path /thank-you
			from ga4
		}
	}
	reverse_proxy %s
}
`, adminPort, filepath.Join(dir, "postback"), rc.URL, httpPort, strings.TrimPrefix(shop.URL, "http://"))
		p := startCaddy(b, bin, dir, filepath.Join(dir, "home"), cfg, adminPort)
		pid := p.cmd.Process.Pid
		base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		waitServing(b, p, base)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(base + "/?clickid=stalled")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(base)
		var cookie string
		for _, ck := range jar.Cookies(u) {
			cookie = ck.Name + "=" + ck.Value
		}
		// Warm up once with a client that reads, then measure the idle RSS.
		resp, err = c.Get(base + "/thank-you")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		before, err := procStatusKB(pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var conns []net.Conn
		for range stalledClients {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, conn)
			w := bufio.NewWriter(conn)
			fmt.Fprintf(w, "GET /thank-you HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: %s\r\n\r\n", cookie)
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		// Wait until the shop can write no more: every page has filled what
		// the sockets and Caddy hold for a client that does not read.
		last := int64(-1)
		for quiet := 0; quiet < 4; {
			time.Sleep(250 * time.Millisecond)
			if now := written.Load(); now == last {
				quiet++
			} else {
				last, quiet = now, 0
			}
		}
		stalled, err := procStatusKB(pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, conn := range conns {
			conn.Close()
		}
		p.kill()
		growth := float64(stalled-before) / 1024
		b.ReportMetric(float64(before)/1024, "idle-RSS-MB")
		b.ReportMetric(float64(stalled)/1024, "stalled-RSS-MB")
		b.ReportMetric(growth, "growth-MB")
		b.ReportMetric(float64(written.Load())/(1<<20), "shop-wrote-MB")
		if growth >= 100 {
			b.Errorf("%d stalled clients grew RSS by %.0f MB, over the 100 MB target", stalledClients, growth)
		}
	}
}
