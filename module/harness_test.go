package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-postback/caddy-postback/caddyfile"
	_ "github.com/caddy-postback/caddy-postback/module"
)

// The tests run a real Caddy in this process (caddy.Load, as `caddy run`
// and `caddy reload` do), with real upstreams and receivers on loopback.
// Loading a second config is a real reload.
const (
	httpPort  = 9080
	adminAddr = "localhost:2999"
)

// globalHead is the global options every test config starts with.
func globalHead() string {
	return fmt.Sprintf(`	admin %s
	http_port %d
	auto_https off
	grace_period 1ns
	persist_config off
`, adminAddr, httpPort)
}

// loadCaddyfile adapts and loads a Caddyfile, returning the load error.
func loadCaddyfile(caddyfile string) error {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, _, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		return fmt.Errorf("adapting: %w", err)
	}
	return caddy.Load(cfg, true)
}

// mustLoad loads a config and stops Caddy when the test ends, before the
// test's temporary storage directory is removed.
func mustLoad(t *testing.T, caddyfile string) {
	t.Helper()
	if err := loadCaddyfile(caddyfile); err != nil {
		t.Fatalf("loading config: %v\n%s", err, caddyfile)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// network is a loopback receiver that records every postback.
type network struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []*http.Request
	bodies []string
	status func(n int) int
}

func newNetwork(t *testing.T) *network {
	n := &network{}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		n.hits = append(n.hits, r)
		n.bodies = append(n.bodies, string(b))
		count := len(n.hits)
		n.mu.Unlock()
		if n.status != nil {
			w.WriteHeader(n.status(count))
		}
		_, _ = io.WriteString(w, "OK")
	}))
	t.Cleanup(n.Close)
	return n
}

// requests returns the request URIs received so far.
func (n *network) requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, r := range n.hits {
		out = append(out, r.URL.RequestURI())
	}
	return out
}

// waitFor waits until the receiver has at least want requests, then a
// little longer to catch any extra, and returns what it got.
func (n *network) waitFor(t *testing.T, want int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(n.requests()) < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Every attempt sent has its outcome recorded: nothing is in flight.
	waitQueue(t, time.Until(deadline)+time.Second, func(q queueEntry) bool { return q.Running == 0 })
	return n.requests()
}

// queueEntry is one network's queue as GET /postback/queue shows it.
type queueEntry struct {
	Network  string `json:"network"`
	Queued   int    `json:"queued"`
	Retrying int    `json:"retrying"`
	Running  int    `json:"running"`
	Dead     int    `json:"dead"`
}

// waitQueue waits until every network's queue satisfies ok.
func waitQueue(t *testing.T, within time.Duration, ok func(queueEntry) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, b := adminDo(t, "GET", "/postback/queue", nil)
		var qs []queueEntry
		good := status == 200 && json.Unmarshal(b, &qs) == nil
		for _, q := range qs {
			good = good && ok(q)
		}
		if good {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not settled within %s: %d %s", within, status, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQueueEmpty waits until nothing waits or runs: every postback has its
// final outcome, so no more requests can reach a network.
func waitQueueEmpty(t *testing.T, within time.Duration) {
	t.Helper()
	waitQueue(t, within, func(q queueEntry) bool { return q.Queued+q.Retrying+q.Running == 0 })
}

// visitor is a browser: a client with a cookie jar that does not follow
// redirects.
func visitor(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("http://localhost:%d%s", httpPort, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// shop is a loopback upstream serving pages by path.
func shop(t *testing.T, pages map[string]func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := pages[r.URL.Path]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>page "+r.URL.Path+"</body></html>")
	}))
	t.Cleanup(s.Close)
	return s
}

// htmlPage serves body as an HTML page.
func htmlPage[B string | []byte](body B) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(body))
	}
}

func hostPort(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func mustURL(t *testing.T) *url.URL {
	u, err := url.Parse(fmt.Sprintf("http://localhost:%d/", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// stopCaddy stops a config a test loaded by mistake.
func stopCaddy() error { return caddy.Stop() }
