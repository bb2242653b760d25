package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

var bg = context.Background()

// receiver is a loopback HTTP server that counts postbacks by order ID and
// answers with a programmable status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    map[string]int
	answer func(r *http.Request, n int) (int, http.Header)
	total  atomic.Int64
}

func newReceiver(t *testing.T, answer func(r *http.Request, n int) (int, http.Header)) *receiver {
	rc := &receiver{got: map[string]int{}, answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("order")
		rc.mu.Lock()
		rc.got[id]++
		n := rc.got[id]
		rc.mu.Unlock()
		rc.total.Add(1)
		status, h := 200, http.Header(nil)
		if rc.answer != nil {
			status, h = rc.answer(r, n)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[id]
}

type harness struct {
	st    store.Store
	d     *Dispatcher
	dests map[string]Destination
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func testOptions(opts Options) Options {
	if opts.Retry.Base == 0 {
		opts.Retry.Base = 10 * time.Millisecond
	}
	if opts.Retry.Max == 0 {
		opts.Retry.Max = 50 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.PauseBase == 0 {
		opts.PauseBase = 20 * time.Millisecond
	}
	return opts
}

// newHarness starts a dispatcher on a fresh store, sending to the networks
// given as name -> URL template.
func newHarness(t *testing.T, opts Options, networks map[string]string) *harness {
	t.Helper()
	h := &harness{st: openStore(t), dests: map[string]Destination{}}
	for name, u := range networks {
		h.dests[name] = Destination{Destination: dest(t, postback.Config{URL: u})}
	}
	h.d = New(h.st, testOptions(opts))
	h.d.Configure(Config{Destinations: h.dests})
	h.d.Start()
	t.Cleanup(h.d.Stop)
	return h
}

func dest(t *testing.T, cfg postback.Config) postback.Destination {
	t.Helper()
	d, err := postback.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// enqueue records one delivery to network for an order and wakes the
// dispatcher, as the conversion tracker does.
func (h *harness) enqueue(t *testing.T, network, orderID string, maxAge time.Duration) string {
	t.Helper()
	return enqueue(t, h.st, h.d, network, orderID, maxAge)
}

func enqueue(t *testing.T, st store.Store, d *Dispatcher, network, orderID string, maxAge time.Duration) string {
	t.Helper()
	now := time.Now()
	if maxAge == 0 {
		maxAge = 72 * time.Hour
	}
	o := order.Order{Source: "webhook", Event: "purchase", ID: orderID, Status: order.StatusApproved}
	del := record.Delivery{ID: record.NewID(now), Network: network, Event: "purchase", OrderID: orderID, Status: order.StatusApproved,
		Key: network + "/purchase/" + orderID, MaxAge: maxAge, CreatedAt: now,
		Postback: record.Postback{Network: network, Order: o, Touchpoint: record.Touchpoint{Network: network, ClickID: "c-" + orderID}, Time: now}}
	res, err := st.Record(bg, store.Recording{Deliveries: []record.Delivery{del}, DedupUntil: now.Add(time.Hour), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Queued) != 1 {
		t.Fatalf("queued %d", len(res.Queued))
	}
	if d != nil {
		d.Wake()
	}
	return del.ID
}

func waitFor(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, st store.Store, id string, want record.State, within time.Duration) *record.Delivery {
	t.Helper()
	var d *record.Delivery
	waitFor(t, within, func() error {
		var err error
		d, err = st.Delivery(bg, id, time.Now())
		if err != nil {
			return err
		}
		if d.State != want {
			return fmt.Errorf("delivery %s is %s (tries %d, reason %q), want %s", id, d.State, d.Tries, d.Reason, want)
		}
		return nil
	})
	return d
}

// settled asserts that nothing of network waits or runs any more: whatever
// the receiver has counted is all it will ever get.
func settled(t *testing.T, st store.Store, network string) {
	t.Helper()
	qs, err := st.QueueStats(bg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Network == network && q.Queued+q.Retrying+q.Running > 0 {
			t.Fatalf("%s still has deliveries in the queue: %+v", network, q)
		}
	}
}

func TestDeliversOnce(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t, Options{}, map[string]string{"net": rc.URL + "/pb?order={order_id}&cid={click_id}"})
	id := h.enqueue(t, "net", "A1", 0)
	d := waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	settled(t, h.st, "net")
	if rc.count("A1") != 1 || d.Tries != 1 {
		t.Fatalf("received %d, tries %d; want 1", rc.count("A1"), d.Tries)
	}
	if !strings.HasSuffix(d.Request.URL, "/pb?order=A1&cid=c-A1") || d.Attempts[0].Snippet != "answer 200" {
		t.Fatalf("delivery log: %+v", d)
	}
}

func TestTransientThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(_ *http.Request, n int) (int, http.Header) {
		if n <= 2 {
			return 500, nil
		}
		return 200, nil
	})
	h := newHarness(t, Options{}, map[string]string{"net": rc.URL + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "T1", 0)
	d := waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	settled(t, h.st, "net")
	if d.Tries != 3 || rc.count("T1") != 3 {
		t.Fatalf("tries %d, received %d; want 3", d.Tries, rc.count("T1"))
	}
	if d.Attempts[0].Status != 500 || d.Attempts[2].Status != 200 || d.Attempts[2].Snippet != "answer 200" {
		t.Fatalf("attempt log: %+v", d.Attempts)
	}
}

func TestReceiverDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	h := newHarness(t, Options{}, map[string]string{"net": "http://" + addr + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "D1", 0)
	waitFor(t, 5*time.Second, func() error {
		d, err := h.st.Delivery(bg, id, time.Now())
		if err != nil || d.Tries == 0 || d.Attempts[0].Error == "" {
			return fmt.Errorf("no failed attempt yet: %+v %v", d, err)
		}
		return nil
	})
	var got atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) })}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("could not listen on %s again: %v", addr, err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	waitState(t, h.st, id, record.StateDelivered, 10*time.Second)
	settled(t, h.st, "net")
	if got.Load() != 1 {
		t.Fatalf("received %d postbacks, want exactly 1", got.Load())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var first, second atomic.Int64
	rc := newReceiver(t, func(_ *http.Request, n int) (int, http.Header) {
		if n == 1 {
			first.Store(time.Now().UnixNano())
			return 429, http.Header{"Retry-After": {"1"}}
		}
		second.Store(time.Now().UnixNano())
		return 200, nil
	})
	h := newHarness(t, Options{}, map[string]string{"net": rc.URL + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "R1", 0)
	waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	if gap := time.Duration(second.Load() - first.Load()); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v despite Retry-After: 1", gap)
	}
}

func TestPermanentFailureIsDeadAndReplayable(t *testing.T) {
	var fixed atomic.Bool
	rc := newReceiver(t, func(_ *http.Request, _ int) (int, http.Header) {
		if fixed.Load() {
			return 200, nil
		}
		return 400, nil
	})
	h := newHarness(t, Options{}, map[string]string{"net": rc.URL + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "P1", 0)
	d := waitState(t, h.st, id, record.StateDead, 5*time.Second)
	if d.Tries != 1 || !strings.Contains(d.Reason, "400") {
		t.Fatalf("dead letter: tries %d reason %q", d.Tries, d.Reason)
	}
	fixed.Store(true)
	if _, err := h.st.Replay(bg, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	h.d.Wake()
	d = waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	if d.Tries != 2 || rc.count("P1") != 2 {
		t.Fatalf("after replay: tries %d, received %d", d.Tries, rc.count("P1"))
	}
}

// TestReplayUsesCurrentTemplate: a dead letter replayed after the operator
// fixed the network's URL is sent with the fixed URL.
func TestReplayUsesCurrentTemplate(t *testing.T) {
	broken := newReceiver(t, func(*http.Request, int) (int, http.Header) { return 404, nil })
	fixed := newReceiver(t, nil)
	h := newHarness(t, Options{}, map[string]string{"net": broken.URL + "/old?order={order_id}"})
	id := h.enqueue(t, "net", "F1", 0)
	waitState(t, h.st, id, record.StateDead, 5*time.Second)
	h.d.Configure(Config{Destinations: map[string]Destination{"net": {Destination: dest(t, postback.Config{URL: fixed.URL + "/new?order={order_id}"})}}})
	if _, err := h.st.Replay(bg, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	h.d.Wake()
	d := waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	if fixed.count("F1") != 1 || broken.count("F1") != 1 || !strings.Contains(d.Request.URL, "/new?order=F1") {
		t.Fatalf("fixed got %d, broken %d, logged %s", fixed.count("F1"), broken.count("F1"), d.Request.URL)
	}
}

func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
	}))
	defer srv.Close()
	defer close(release)
	h := newHarness(t, Options{Timeout: 200 * time.Millisecond}, map[string]string{"net": srv.URL + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "H1", 0)
	d := waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	if d.Tries != 2 || d.Attempts[0].Error == "" {
		t.Fatalf("first attempt should time out and the second succeed: %+v", d.Attempts)
	}
}

func TestMaxAgeBuries(t *testing.T) {
	rc := newReceiver(t, func(*http.Request, int) (int, http.Header) { return 503, nil })
	h := newHarness(t, Options{}, map[string]string{"net": rc.URL + "/pb?order={order_id}"})
	id := h.enqueue(t, "net", "M1", 100*time.Millisecond)
	d := waitState(t, h.st, id, record.StateDead, 5*time.Second)
	if !strings.Contains(d.Reason, "max age") {
		t.Fatalf("reason %q", d.Reason)
	}
}

// TestRedirectsAreNotFollowed: a redirect to another host is a dead letter
// that names where it pointed, the other host receives nothing (no secret
// header, no Referer), and a same-host 307 keeps the method and body.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	var mu sync.Mutex
	var final []string
	rc := newReceiver(t, func(r *http.Request, _ int) (int, http.Header) {
		switch r.URL.Path {
		case "/away":
			return http.StatusMovedPermanently, http.Header{"Location": {other.URL + "/steal"}}
		case "/again":
			return http.StatusTemporaryRedirect, http.Header{"Location": {"/final?order=" + r.URL.Query().Get("order")}}
		case "/final":
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			final = append(final, r.Method+" "+string(b)+" referer="+r.Referer())
			mu.Unlock()
		}
		return 200, nil
	})
	h := newHarness(t, Options{}, nil)
	h.d.Configure(Config{Destinations: map[string]Destination{
		"away":  {Destination: dest(t, postback.Config{URL: rc.URL + "/away?order={order_id}", Headers: map[string]string{"X-Api-Key": "k-123456789"}})},
		"again": {Destination: dest(t, postback.Config{Preset: "post", URL: rc.URL + "/again?order={order_id}", Body: "cid={click_id}"})},
	}})
	away := h.enqueue(t, "away", "X1", 0)
	again := h.enqueue(t, "again", "X2", 0)
	d := waitState(t, h.st, away, record.StateDead, 5*time.Second)
	if !strings.Contains(d.Reason, "redirect") || !strings.Contains(d.Reason, other.URL) || elsewhere.Load() != 0 {
		t.Fatalf("redirect to another host: reason %q, other host got %d requests", d.Reason, elsewhere.Load())
	}
	waitState(t, h.st, again, record.StateDelivered, 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(final) != 1 || final[0] != "POST cid=c-X2 referer=" {
		t.Fatalf("same-host 307: %v", final)
	}
}

// TestSecretsNeverStored: a secret in the URL path, the query and a header,
// echoed back by the network and present in a transport error, is masked
// in everything stored.
func TestSecretsNeverStored(t *testing.T) {
	const secret = "sk_live_4xQ9zzTOPSECRET"
	rc := newReceiver(t, func(r *http.Request, n int) (int, http.Header) { return 200, nil })
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "you sent %s with %s", r.URL.String(), r.Header.Get("X-Account"))
	}))
	defer echo.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	cfgs := map[string]postback.Config{
		"echo": {URL: echo.URL + "/" + secret + "/pb?order={order_id}&k=" + secret, Headers: map[string]string{"X-Account": secret}},
		"down": {URL: "http://" + dead + "/" + secret + "/pb?order={order_id}"},
		"ok":   {Preset: "post", URL: rc.URL + "/pb?order={order_id}", Body: `{"key":"` + secret + `"}`, BodyType: "json"},
	}
	h := newHarness(t, Options{Retry: RetryPolicy{Base: time.Hour}}, nil)
	dests := map[string]Destination{}
	for n, c := range cfgs {
		dests[n] = Destination{Destination: dest(t, c)}
	}
	h.d.Configure(Config{Destinations: dests, Masker: postback.NewMasker(secret)})
	ids := []string{h.enqueue(t, "echo", "S1", 0), h.enqueue(t, "down", "S2", 0), h.enqueue(t, "ok", "S3", 0)}
	waitState(t, h.st, ids[0], record.StateDelivered, 5*time.Second)
	waitState(t, h.st, ids[1], record.StateRetrying, 5*time.Second)
	waitState(t, h.st, ids[2], record.StateDelivered, 5*time.Second)
	for _, id := range ids {
		d, err := h.st.Delivery(bg, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		all := fmt.Sprintf("%+v", d)
		if strings.Contains(all, secret) || strings.Contains(all, "TOPSECRET") {
			t.Errorf("delivery %s stores the secret: %s", d.Network, all)
		}
		if !strings.Contains(all, postback.Masked) {
			t.Errorf("delivery %s shows no mask: %s", d.Network, all)
		}
	}
}

// testDestination is a destination whose rendering fails as told.
type testDestination struct {
	postback.Destination
	err error
}

func (d testDestination) Render(context.Context, *record.Postback) (record.Request, error) {
	return record.Request{}, d.err
}

func TestRenderFailures(t *testing.T) {
	h := newHarness(t, Options{}, nil)
	base := dest(t, postback.Config{URL: "http://127.0.0.1:1/pb"})
	h.d.Configure(Config{Destinations: map[string]Destination{
		"old":   {Destination: testDestination{base, fmt.Errorf("%w: event older than 7 days", postback.ErrRejected)}},
		"token": {Destination: testDestination{base, fmt.Errorf("%w: token endpoint answered 503", postback.ErrTransient)}},
	}})
	old := h.enqueue(t, "old", "O1", 0)
	tok := h.enqueue(t, "token", "O2", 0)
	d := waitState(t, h.st, old, record.StateDead, 5*time.Second)
	if !strings.Contains(d.Reason, "older than 7 days") {
		t.Fatalf("reason %q", d.Reason)
	}
	d = waitState(t, h.st, tok, record.StateRetrying, 5*time.Second)
	if !strings.Contains(d.Attempts[0].Error, "token endpoint") {
		t.Fatalf("attempts %+v", d.Attempts)
	}
}

func TestFailingNetworkDoesNotStallOthers(t *testing.T) {
	var pauses atomic.Int64
	bad := newReceiver(t, func(*http.Request, int) (int, http.Header) { return 502, nil })
	good := newReceiver(t, nil)
	h := newHarness(t, Options{PauseAfter: 3, PauseBase: time.Minute, OnPause: func(_ string, p bool) {
		if p {
			pauses.Add(1)
		}
	}}, map[string]string{"bad": bad.URL + "/pb?order={order_id}", "good": good.URL + "/pb?order={order_id}"})
	var badIDs, ids []string
	for i := range 20 {
		badIDs = append(badIDs, h.enqueue(t, "bad", fmt.Sprintf("b%d", i), 0))
	}
	for i := range 50 {
		ids = append(ids, h.enqueue(t, "good", fmt.Sprintf("g%d", i), 0))
	}
	for _, id := range ids {
		waitState(t, h.st, id, record.StateDelivered, 5*time.Second)
	}
	waitFor(t, 5*time.Second, func() error {
		if _, ok := h.d.Paused()["bad"]; !ok || pauses.Load() == 0 {
			return errors.New("the failing network was never paused")
		}
		// Paused: nothing of it runs, and every request it got is an
		// attempt on record, so none is sent behind the queue's back.
		qs, err := h.st.QueueStats(bg, time.Now())
		if err != nil {
			return err
		}
		for _, q := range qs {
			if q.Network == "bad" && q.Running > 0 {
				return fmt.Errorf("%d deliveries of the paused network still run", q.Running)
			}
		}
		return nil
	})
	tries := 0
	for _, id := range badIDs {
		d, err := h.st.Delivery(bg, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tries += d.Tries
	}
	if int64(tries) != bad.total.Load() || tries > 3+DefaultConcurrency {
		t.Fatalf("the paused network got %d requests, %d attempts recorded", bad.total.Load(), tries)
	}
}

func TestStopReturnsClaimedDeliveries(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	st := openStore(t)
	d := New(st, Options{Timeout: 5 * time.Second, Retry: RetryPolicy{Base: 10 * time.Millisecond}})
	d.Configure(Config{Destinations: map[string]Destination{"net": {Destination: dest(t, postback.Config{URL: srv.URL + "/pb?order={order_id}"}), Concurrency: 1}}})
	d.Start()
	var ids []string
	for i := range 5 {
		ids = append(ids, enqueue(t, st, d, "net", fmt.Sprintf("s%d", i), 0))
	}
	waitFor(t, 5*time.Second, func() error {
		qs, err := st.QueueStats(bg, time.Now())
		if err != nil || len(qs) != 1 || qs[0].Running != 1 {
			return fmt.Errorf("queue %+v %v: want one running", qs, err)
		}
		return nil
	})
	d.Stop()
	// Every delivery waits again, due now, with no attempt counted.
	for _, id := range ids {
		del, err := st.Delivery(bg, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !del.State.Waiting() || del.Tries != 0 || del.NextAttempt.After(time.Now()) {
			t.Fatalf("%s after stop: %+v", id, del)
		}
	}
}

// TestTwoDispatchersShareAQueue runs two dispatchers, as two Caddy nodes
// would, on one queue: 10,000 deliveries to a receiver that fails 30% of
// requests at random are each delivered exactly once, and both
// dispatchers send.
func TestTwoDispatchersShareAQueue(t *testing.T) {
	const n = 10000
	var mu sync.Mutex
	ok := map[string]int{}
	by := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(10) < 3 {
			w.WriteHeader(503)
			return
		}
		mu.Lock()
		ok[r.URL.Query().Get("order")]++
		by[r.URL.Query().Get("by")]++
		mu.Unlock()
	}))
	defer srv.Close()
	st := openStore(t)
	var ds []*Dispatcher
	for i := range 2 {
		// A generous timeout: an answer slower than it is retried, and
		// that second delivery is the at-least-once promise, not a bug.
		d := New(st, testOptions(Options{PauseAfter: 1000, Timeout: 30 * time.Second}))
		d.Configure(Config{Destinations: map[string]Destination{"net": {Destination: dest(t, postback.Config{URL: srv.URL + fmt.Sprintf("/pb?order={order_id}&by=d%d", i)})}}})
		d.Start()
		t.Cleanup(d.Stop)
		ds = append(ds, d)
	}
	for i := range n {
		enqueue(t, st, ds[i%2], "net", fmt.Sprintf("o%d", i), 0)
	}
	waitFor(t, 120*time.Second, func() error {
		qs, err := st.QueueStats(bg, time.Now())
		if err != nil {
			return err
		}
		if len(qs) > 0 && qs[0].Queued+qs[0].Retrying+qs[0].Running > 0 {
			return fmt.Errorf("still in the queue: %+v", qs[0])
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(ok) != n {
		t.Fatalf("%d orders delivered, want %d", len(ok), n)
	}
	for oid, c := range ok {
		if c != 1 {
			t.Fatalf("order %s delivered %d times", oid, c)
		}
	}
	if by["d0"] == 0 || by["d1"] == 0 {
		t.Fatalf("one dispatcher did all the work: %v", by)
	}
}
