package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

// These tests run two Caddy processes, the built binary, on one PostgreSQL
// database, as a cluster behind a load balancer would: a click on one node,
// the thank-you page or the platform's webhook on the other, and both
// nodes' dispatchers sending from one queue.

const clusterStripeSecret = "whsec_cluster_test_secret"

func clusterConfig(dsn, receiverURL string, adminPort, httpPort int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 1s
	postback {
		storage postgres "%s"
		session_daily_limit off
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&order={order_id}"
			header X-Node {env.PB_NODE}
			concurrency 16
		}
		delivery {
			timeout 2s
			lease_margin 2s
			retry_base 100ms
			retry_max 500ms
			pause_after 1000000
		}
	}
}

http://:%d {
	bind 127.0.0.1
	postback {
		webhook /hooks/stripe stripe %s
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency USD
		}
		conversion purchase {
			match path /return
			order_id {http.request.uri.query.session_id}
			join_only
		}
	}
	respond "page {path}" 200
}
`, adminPort, dsn, receiverURL, httpPort, clusterStripeSecret)
}

// node is one Caddy of the cluster.
type node struct {
	*proc
	name string
	base string // http://127.0.0.1:port
}

// startCluster starts n nodes on a fresh database.
func startCluster(t testing.TB, receiverURL string, n int) (nodes []*node, dsn string) {
	t.Helper()
	dsn = pgtest.Start(t).Database(t)
	return startNodes(t, dsn, receiverURL, n), dsn
}

// startNodes starts n nodes on the database dsn.
func startNodes(t testing.TB, dsn, receiverURL string, n int) []*node {
	t.Helper()
	bin := caddyBinary(t)
	var nodes []*node
	for i := range n {
		dir := t.TempDir()
		adminPort, httpPort := freePort(t), freePort(t)
		name := string(rune('a' + i))
		p := startCaddyEnv(t, bin, dir, filepath.Join(dir, "home"), clusterConfig(dsn, receiverURL, adminPort, httpPort), adminPort,
			"PB_NODE="+name)
		n := &node{proc: p, name: name, base: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
		waitServing(t, p, n.base)
		nodes = append(nodes, n)
	}
	return nodes
}

// clusterReceiver is a network that records every postback: its order,
// the node that sent it and the status it answered.
type clusterReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []clusterHit
	answer func(r *http.Request) int // 0: hang until the sender goes away
	// hanging counts the requests left hanging now.
	hanging atomic.Int64
}

type clusterHit struct {
	order, node string
	status      int
	at          time.Time
}

func newClusterReceiver(t testing.TB, answer func(r *http.Request) int) *clusterReceiver {
	rc := &clusterReceiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(r)
		}
		if status == 0 {
			rc.hanging.Add(1)
			defer rc.hanging.Add(-1)
			<-r.Context().Done()
			return
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, clusterHit{r.URL.Query().Get("order"), r.Header.Get("X-Node"), status, time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// delivered counts the 200 answers per order.
func (rc *clusterReceiver) delivered() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for _, h := range rc.hits {
		if h.status == http.StatusOK {
			out[h.order]++
		}
	}
	return out
}

// settle waits until nothing of the cluster's queue waits or runs.
func settle(t testing.TB, n *node, within time.Duration) {
	t.Helper()
	if err := waitUntil(within, 100*time.Millisecond, func() error {
		pending, err := n.pending()
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			return fmt.Errorf("%w: %v", errNotYet, pending)
		}
		return nil
	}); err != nil {
		t.Fatalf("the queue did not empty: %v\n%s", err, n.tail())
	}
}

func browse(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func sessionCookie(t *testing.T, jar http.CookieJar, base string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, c := range jar.Cookies(u) {
		if c.Name == "_pbsid" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func postStripeTo(t *testing.T, base string, eventID, sessionID, ref string) int {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2026-07-29.dahlia","created":%d,
"data":{"object":{"id":%q,"object":"checkout.session","amount_total":4990,"client_reference_id":%q,"currency":"usd",
"metadata":{},"mode":"payment","payment_intent":"pi_%s","payment_status":"paid","status":"complete"}},
"livemode":true,"type":"checkout.session.completed"}`, eventID, time.Now().Unix(), sessionID, ref, sessionID))
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: clusterStripeSecret, Timestamp: time.Now()})
	req, _ := http.NewRequest("POST", base+"/hooks/stripe", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sp.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestClusterJoinsAcrossNodes: a click on node A and the thank-you page on
// node B make one postback; a Stripe webhook on B joins a session made on
// A; a return page on A and the webhook on B for one order, in either order
// or at once, make one postback.
func TestClusterJoinsAcrossNodes(t *testing.T) {
	rc := newClusterReceiver(t, nil)
	nodes, _ := startCluster(t, rc.URL, 2)
	a, b := nodes[0], nodes[1]
	jar, _ := cookiejar.New(nil)
	visitor := &http.Client{Jar: jar}
	browse(t, visitor, a.base+"/?clickid=cluster-click")
	ref := sessionCookie(t, jar, a.base)

	browse(t, visitor, b.base+"/thank-you?order=PAGE-B&total=10")
	browse(t, visitor, a.base+"/thank-you?order=PAGE-B&total=10") // a reload, on the other node
	if status := postStripeTo(t, b.base, "evt_hook_b", "cs_HOOK_B", ref); status != 200 {
		t.Fatalf("webhook on B: %d", status)
	}
	browse(t, visitor, a.base+"/return?session_id=cs_LINK_FIRST")
	if status := postStripeTo(t, b.base, "evt_link_first", "cs_LINK_FIRST", ""); status != 200 {
		t.Fatalf("webhook after the return page: %d", status)
	}
	if status := postStripeTo(t, b.base, "evt_hook_first", "cs_HOOK_FIRST", ""); status != 200 {
		t.Fatalf("webhook before the return page: %d", status)
	}
	browse(t, visitor, a.base+"/return?session_id=cs_HOOK_FIRST")
	// The return page and the webhook at once, on different nodes.
	for i := range 20 {
		id := fmt.Sprintf("cs_RACE_%d", i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); browse(t, visitor, a.base+"/return?session_id="+id) }()
		go func() {
			defer wg.Done()
			if status := postStripeTo(t, b.base, "evt_"+id, id, ""); status != 200 {
				t.Errorf("webhook %s: %d", id, status)
			}
		}()
		wg.Wait()
	}
	settle(t, a, 60*time.Second)
	got := rc.delivered()
	want := []string{"PAGE-B", "cs_HOOK_B", "cs_LINK_FIRST", "cs_HOOK_FIRST"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("cs_RACE_%d", i))
	}
	for _, o := range want {
		if got[o] != 1 {
			t.Errorf("order %s: %d postbacks, want 1", o, got[o])
		}
	}
	if len(got) != len(want) {
		t.Errorf("postbacks for %d orders, want %d: %v", len(got), len(want), got)
	}
}

// TestClusterDeliversEachOnce: 10,000 conversions spread over two nodes, to
// a network that fails 30% of requests at random, are each delivered
// exactly once, and both nodes' dispatchers send throughout.
func TestClusterDeliversEachOnce(t *testing.T) {
	const orders = 10000
	rc := newClusterReceiver(t, func(*http.Request) int {
		if rand.IntN(10) < 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	nodes, _ := startCluster(t, rc.URL, 2)
	jar, _ := cookiejar.New(nil)
	browse(t, &http.Client{Jar: jar}, nodes[0].base+"/?clickid=many")
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
			for {
				i := next.Add(1) - 1
				if i >= orders {
					return
				}
				n := nodes[(int(i)+w)%2]
				resp, err := c.Get(fmt.Sprintf("%s/thank-you?order=ORD-%d&total=5", n.base, i))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	settle(t, nodes[0], 5*time.Minute)
	elapsed := time.Since(start)
	got := rc.delivered()
	if len(got) != orders {
		t.Fatalf("%d orders delivered, want %d", len(got), orders)
	}
	for o, n := range got {
		if n != 1 {
			t.Fatalf("order %s delivered %d times", o, n)
		}
	}
	// Both dispatchers sent, in every part of the run.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	first, last := rc.hits[0].at, rc.hits[len(rc.hits)-1].at
	span := last.Sub(first)
	var perQuarter [4]map[string]int
	for i := range perQuarter {
		perQuarter[i] = map[string]int{}
	}
	for _, h := range rc.hits {
		q := min(int(4*h.at.Sub(first)/max(span, 1)), 3)
		perQuarter[q][h.node]++
	}
	for q, byNode := range perQuarter {
		if byNode["a"] == 0 || byNode["b"] == 0 {
			t.Errorf("quarter %d of the run: requests by node %v: both dispatchers should be busy", q+1, byNode)
		}
	}
	t.Logf("%d conversions over two nodes, %d requests (30%% failing), all delivered once in %s; per quarter by node: %v",
		orders, len(rc.hits), elapsed.Round(time.Second), perQuarter)
}

// TestClusterNodeKilled: a node killed with SIGKILL while it holds
// deliveries in flight; the other node sends them once their lease ends,
// and none is sent twice after a recorded success.
func TestClusterNodeKilled(t *testing.T) {
	rc := newClusterReceiver(t, func(r *http.Request) int {
		if r.Header.Get("X-Node") == "a" {
			return 0 // node a's requests hang until it dies (or times out)
		}
		return http.StatusOK
	})
	nodes, _ := startCluster(t, rc.URL, 2)
	a, b := nodes[0], nodes[1]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	browse(t, c, a.base+"/?clickid=killed")
	const orders = 300
	for i := range orders {
		browse(t, c, fmt.Sprintf("%s/thank-you?order=K-%d&total=5", []*node{a, b}[i%2].base, i))
	}
	if err := waitUntil(30*time.Second, 20*time.Millisecond, func() error {
		if rc.hanging.Load() == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatal("node a never held a delivery in flight")
	}
	a.kill()
	settle(t, b, 2*time.Minute)
	got := rc.delivered()
	for i := range orders {
		if o := fmt.Sprintf("K-%d", i); got[o] != 1 {
			t.Errorf("order %s: %d successful postbacks, want 1", o, got[o])
		}
	}
	// The delivery log of the surviving node: one success each.
	ds, err := b.deliveries("delivered")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != orders {
		t.Fatalf("%d delivered records, want %d", len(ds), orders)
	}
}

// TestClusterDatabaseRestart: PostgreSQL restarts while deliveries are
// being sent; once it is back, every queued postback arrives: nothing is
// lost.
func TestClusterDatabaseRestart(t *testing.T) {
	rc := newClusterReceiver(t, func(*http.Request) int {
		time.Sleep(20 * time.Millisecond) // a slow network keeps the queue busy through the restart
		return http.StatusOK
	})
	nodes, _ := startCluster(t, rc.URL, 2)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	browse(t, c, nodes[0].base+"/?clickid=restart")
	const orders = 600
	for i := range orders {
		browse(t, c, fmt.Sprintf("%s/thank-you?order=R-%d&total=5", nodes[i%2].base, i))
	}
	if err := waitUntil(30*time.Second, 10*time.Millisecond, func() error {
		if len(rc.delivered()) < 50 {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatal("deliveries did not start")
	}
	pgtest.Start(t).Restart(t)
	// Pages are served throughout.
	browse(t, c, nodes[1].base+"/anything")
	settle(t, nodes[0], 3*time.Minute)
	got := rc.delivered()
	for i := range orders {
		if o := fmt.Sprintf("R-%d", i); got[o] == 0 {
			t.Errorf("order %s was never delivered", o)
		}
	}
	dup := 0
	for _, n := range got {
		dup += n - 1
	}
	t.Logf("%d orders delivered through a database restart; %d sent again because their outcome could not be recorded during it (at least once)", len(got), dup)
}
