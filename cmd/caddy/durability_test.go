package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// durabilityOrders is how many thank-you pages the visitor reaches;
// durabilityOK of them (the first) are answered 200 before the kill.
const (
	durabilityOrders = 200
	durabilityOK     = 40
)

// durableConfig is the Caddyfile of the durability test and the backlog
// benchmark: one network pointing at a loopback receiver, a thank-you rule
// reading the order from the query, and short delivery timings so that the
// test is quick. pause_after is high so the failing phase keeps requests in
// flight instead of pausing the network.
func durableConfig(storage, receiverURL string, adminPort, httpPort int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 1s
	postback {
		storage %s
		session_daily_limit off
		network dur {
			click_param clickid
			url "%s/pb?clickid={click_id}&order={order_id}&amount={amount}"
		}
		delivery {
			timeout 2s
			retry_base 100ms
			retry_max 500ms
			pause_after 1000000
		}
	}
}

http://:%d {
	bind 127.0.0.1
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency USD
		}
	}
	respond "thanks" 200
}
`, adminPort, storage, receiverURL, httpPort)
}

// hit is one postback the receiver saw.
type hit struct {
	order  string
	phase  int // 1 before the kill, 2 after the restart
	status int // 0: left hanging until the sender gave up
}

// durReceiver is the network. In phase 1 it answers 200 to the first
// durabilityOK orders, 503 to every other of the rest, and leaves the others
// hanging (so attempts are in flight when the process is killed); in phase
// 2 it answers 200 to everything.
type durReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	phase    int
	hits     []hit
	inflight atomic.Int64
	release  chan struct{} // closed when the test ends, to free hanging handlers
}

func newDurReceiver(t testing.TB) *durReceiver {
	rc := &durReceiver{phase: 1, release: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() { close(rc.release); rc.Close() })
	return rc
}

func (rc *durReceiver) serve(w http.ResponseWriter, r *http.Request) {
	order := r.URL.Query().Get("order")
	var n int
	_, _ = fmt.Sscanf(order, "ORD-%d", &n)
	rc.mu.Lock()
	phase := rc.phase
	rc.mu.Unlock()
	status := http.StatusOK
	if phase == 1 && n >= durabilityOK {
		status = http.StatusServiceUnavailable
		if n%2 == 1 {
			status = 0
		}
	}
	if status == 0 {
		rc.record(hit{order, phase, 0})
		rc.inflight.Add(1)
		defer rc.inflight.Add(-1)
		select { // until the dispatcher times out or its process dies
		case <-r.Context().Done():
		case <-rc.release:
		case <-time.After(2 * time.Minute):
		}
		return
	}
	// Recorded before answering: an answer the sender may have read is
	// always in the log.
	rc.record(hit{order, phase, status})
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status))
}

func (rc *durReceiver) record(h hit) {
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	rc.mu.Unlock()
}

func (rc *durReceiver) setPhase(p int) {
	rc.mu.Lock()
	rc.phase = p
	rc.mu.Unlock()
}

// snapshot returns a copy of the hits so far.
func (rc *durReceiver) snapshot() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// delivery is the part of the admin API's delivery record the test reads.
// deliveries lists every delivery in a state, page by page.
func (p *proc) deliveries(state string) ([]delivery, error) {
	var out []delivery
	cursor := ""
	for {
		var page struct {
			Items      []delivery `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		if err := p.adminJSON("/postback/deliveries?state="+state+"&limit=500&cursor="+cursor, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

type delivery struct {
	ID       string `json:"id"`
	Network  string `json:"network"`
	OrderID  string `json:"order_id"`
	State    string `json:"state"`
	Tries    int    `json:"tries"`
	Attempts []struct {
		At      time.Time `json:"at"`
		Outcome string    `json:"outcome"`
	} `json:"attempts"`
}

// TestKill9Durability records conversions while the network fails, kills
// Caddy with SIGKILL with postbacks queued and in flight, restarts it on the
// same storage and checks that every postback arrives, and that none whose
// success was recorded before the kill is sent again.
func TestKill9Durability(t *testing.T) {
	bin := caddyBinary(t)
	dir := t.TempDir()
	storage := filepath.Join(dir, "postback")
	rc := newDurReceiver(t)
	adminPort, httpPort := freePort(t), freePort(t)
	cfg := durableConfig(storage, rc.URL, adminPort, httpPort)
	home := filepath.Join(dir, "home")

	p1 := startCaddy(t, bin, dir, home, cfg, adminPort)

	// A visitor lands with a click ID, then reaches durabilityOrders
	// thank-you pages with distinct orders.
	jar, _ := cookiejar.New(nil)
	visitor := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	site := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	visit := func(path string) *http.Response {
		t.Helper()
		resp, err := visitor.Get(site + path)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, p1.tail())
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return resp
	}
	if resp := visit("/?clickid=dur-click-1"); !strings.Contains(resp.Header.Get("Set-Cookie"), "_pbsid=") {
		t.Fatalf("landing with a click ID set no session cookie: %q", resp.Header.Get("Set-Cookie"))
	}
	orders := make([]string, durabilityOrders)
	for i := range orders {
		orders[i] = fmt.Sprintf("ORD-%04d", i)
		visit("/thank-you?order=" + orders[i] + "&total=10.00")
	}

	// Wait until the network's successes are recorded and attempts are
	// hanging in flight, then kill at once.
	var before []delivery
	err := waitUntil(60*time.Second, 50*time.Millisecond, func() error {
		var err error
		if before, err = p1.deliveries("delivered"); err != nil {
			return err
		}
		if len(before) < durabilityOK || rc.inflight.Load() == 0 {
			return fmt.Errorf("%w: %d delivered, %d in flight", errNotYet, len(before), rc.inflight.Load())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("before the kill: %v\n%s", err, p1.tail())
	}
	inflight := rc.inflight.Load()
	p1.kill()
	pendingAtKill := len(orders) - len(before)
	t.Logf("killed with %d postbacks delivered, %d not (%d attempts in flight)", len(before), pendingAtKill, inflight)

	recorded := map[string]bool{}
	for _, d := range before {
		recorded[d.OrderID] = true
	}
	ok1 := map[string]bool{}
	for _, h := range rc.snapshot() {
		if h.status == http.StatusOK {
			ok1[h.order] = true
		}
	}
	if len(recorded) != durabilityOK || len(ok1) != durabilityOK {
		t.Fatalf("before the kill: %d orders recorded delivered, %d answered 200; want %d each", len(recorded), len(ok1), durabilityOK)
	}
	for o := range ok1 {
		if !recorded[o] {
			t.Fatalf("order %s was answered 200 but not recorded delivered before the kill", o)
		}
	}

	// Restart on the same storage; the network now accepts everything.
	rc.setPhase(2)
	restarted := time.Now()
	p2 := startCaddy(t, bin, dir, home, cfg, adminPort)
	err = waitUntil(90*time.Second, 100*time.Millisecond, func() error {
		ok := map[string]bool{}
		for _, h := range rc.snapshot() {
			if h.status == http.StatusOK {
				ok[h.order] = true
			}
		}
		if len(ok) < len(orders) {
			return fmt.Errorf("%w: %d of %d orders delivered", errNotYet, len(ok), len(orders))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after the restart: %v\n%s", err, p2.tail())
	}

	// The delivery log of the restarted process: nothing pending, every
	// order delivered once, nothing dead.
	err = waitUntil(30*time.Second, 50*time.Millisecond, func() error {
		p, err := p2.pending()
		if err != nil {
			return err
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: pending %v", errNotYet, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pending after every order arrived: %v", err)
	}
	after, err := p2.deliveries("delivered")
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]int{}
	failedAfterRestart := map[string]int{}
	for _, d := range after {
		logged[d.OrderID]++
		if d.Network != "dur" || d.State != "delivered" {
			t.Errorf("delivery %s: network %q state %q", d.ID, d.Network, d.State)
		}
		// A delivery is never attempted again once an attempt succeeded.
		successes := 0
		for _, a := range d.Attempts {
			if a.Outcome == "delivered" {
				successes++
			} else if a.At.After(restarted) {
				failedAfterRestart[d.OrderID]++
			}
		}
		if successes != 1 {
			t.Errorf("delivery %s (order %s): %d successful attempts logged, want 1", d.ID, d.OrderID, successes)
		}
	}
	for _, o := range orders {
		if logged[o] != 1 {
			t.Errorf("order %s: %d delivered records, want 1", o, logged[o])
		}
	}
	if len(after) != len(orders) {
		t.Errorf("%d delivered records, want %d", len(after), len(orders))
	}
	dead, err := p2.deliveries("dead")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 0 {
		t.Errorf("%d dead letters: %+v", len(dead), dead)
	}

	// The receiver's view: every order arrived; none recorded as delivered
	// before the kill came again; and after the restart (where no success
	// can be lost) each order was answered 200 once, or once more for each
	// attempt the dispatcher logged as failed (an answer that came after its
	// timeout on a very slow machine: at least once, as promised).
	// Nothing waits or runs any more (checked above), and the killed
	// process's connections died with it: no request can still arrive.
	ok2 := map[string]int{}
	for _, h := range rc.snapshot() {
		if h.phase != 2 {
			continue
		}
		if recorded[h.order] {
			t.Errorf("order %s was sent again after the restart, though its success was recorded before the kill", h.order)
		}
		if h.status == http.StatusOK {
			ok2[h.order]++
		}
	}
	for o, n := range ok2 {
		if n > 1+failedAfterRestart[o] {
			t.Errorf("order %s was answered 200 %d times after the restart, with %d failed attempts logged", o, n, failedAfterRestart[o])
		}
	}
	if want := len(orders) - durabilityOK; len(ok2) != want {
		t.Errorf("%d orders delivered after the restart, want the %d left at the kill", len(ok2), want)
	}
}
