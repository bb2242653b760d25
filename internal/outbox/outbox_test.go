package outbox

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

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

func newTestOutbox(t *testing.T, opts Options) (*Outbox, *Dispatcher) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ob := New(st)
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
	d := NewDispatcher(ob, opts)
	d.Start()
	t.Cleanup(func() { d.Stop(); _ = st.Close() })
	return ob, d
}

func enqueue(t *testing.T, ob *Outbox, network, url, orderID string) string {
	t.Helper()
	id := NewID()
	res, err := ob.Record(Conversion{ID: NewID()}, []Delivery{{
		ID: id, Network: network, Event: "purchase", OrderID: orderID, Key: network + "/purchase/" + orderID,
		Request: postback.Request{Method: "GET", URL: url + "/pb?order=" + orderID},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Queued) != 1 {
		t.Fatalf("queued %d", len(res.Queued))
	}
	return id
}

func waitState(t *testing.T, ob *Outbox, id string, want State, within time.Duration) *Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := ob.Delivery(id)
		if err == nil && d.State == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: state %v (err %v), want %s", id, d, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecordIsIdempotent(t *testing.T) {
	ob, _ := newTestOutbox(t, Options{})
	rc := newReceiver(t, nil)
	enqueue(t, ob, "net", rc.URL, "A1")
	res, err := ob.Record(Conversion{ID: NewID()}, []Delivery{{ID: NewID(), Network: "net", Key: "net/purchase/A1",
		Request: postback.Request{Method: "GET", URL: rc.URL + "/pb?order=A1"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Queued) != 0 || len(res.Duplicates) != 1 || res.Conversion != nil {
		t.Fatalf("second record of the same key: %+v", res)
	}
	once := []byte("e/stripe/evt_1")
	for i := range 2 {
		res, err = ob.Record(Conversion{ID: NewID()}, []Delivery{{ID: NewID(), Network: "net", Key: "net/purchase/B1",
			Request: postback.Request{Method: "GET", URL: rc.URL + "/pb?order=B1"}}}, once, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (i == 1) != res.SeenEvent {
			t.Fatalf("call %d: SeenEvent = %v", i, res.SeenEvent)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if rc.count("A1") != 1 || rc.count("B1") != 1 {
		t.Fatalf("postbacks: A1 %d, B1 %d; want 1 each", rc.count("A1"), rc.count("B1"))
	}
}

func TestTransientThenSuccess(t *testing.T) {
	ob, _ := newTestOutbox(t, Options{})
	rc := newReceiver(t, func(_ *http.Request, n int) (int, http.Header) {
		if n <= 2 {
			return 500, nil
		}
		return 200, nil
	})
	id := enqueue(t, ob, "net", rc.URL, "T1")
	d := waitState(t, ob, id, StateDelivered, 5*time.Second)
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
	ob, _ := newTestOutbox(t, Options{})
	id := enqueue(t, ob, "net", "http://"+addr, "D1")
	time.Sleep(60 * time.Millisecond)
	if d, _ := ob.Delivery(id); d.State != StateRetrying || d.Tries == 0 || d.Attempts[0].Error == "" {
		t.Fatalf("with the receiver down: %+v", d)
	}
	var got atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) })}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("could not listen on %s again: %v", addr, err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	waitState(t, ob, id, StateDelivered, 10*time.Second)
	time.Sleep(50 * time.Millisecond)
	if got.Load() != 1 {
		t.Fatalf("received %d postbacks, want exactly 1", got.Load())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	ob, _ := newTestOutbox(t, Options{})
	var first, second time.Time
	rc := newReceiver(t, func(_ *http.Request, n int) (int, http.Header) {
		if n == 1 {
			first = time.Now()
			return 429, http.Header{"Retry-After": {"1"}}
		}
		second = time.Now()
		return 200, nil
	})
	id := enqueue(t, ob, "net", rc.URL, "R1")
	waitState(t, ob, id, StateDelivered, 5*time.Second)
	if gap := second.Sub(first); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v despite Retry-After: 1", gap)
	}
}

func TestPermanentFailureIsDeadAndReplayable(t *testing.T) {
	ob, _ := newTestOutbox(t, Options{})
	var fixed atomic.Bool
	rc := newReceiver(t, func(_ *http.Request, _ int) (int, http.Header) {
		if fixed.Load() {
			return 200, nil
		}
		return 400, nil
	})
	id := enqueue(t, ob, "net", rc.URL, "P1")
	d := waitState(t, ob, id, StateDead, 5*time.Second)
	if d.Tries != 1 || !strings.Contains(d.Reason, "400") {
		t.Fatalf("dead letter: tries %d reason %q", d.Tries, d.Reason)
	}
	dead, err := ob.Deliveries(Filter{State: StateDead})
	if err != nil || len(dead) != 1 || dead[0].ID != id {
		t.Fatalf("dead letters: %v %v", dead, err)
	}
	fixed.Store(true)
	if _, err := ob.Replay(id); err != nil {
		t.Fatal(err)
	}
	waitState(t, ob, id, StateDelivered, 5*time.Second)
	if dead, _ := ob.Deliveries(Filter{State: StateDead}); len(dead) != 0 {
		t.Fatalf("replayed delivery still listed as dead")
	}
	if _, err := ob.Replay("nope"); err == nil {
		t.Fatal("replaying an unknown delivery must fail")
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
	ob, _ := newTestOutbox(t, Options{Timeout: 200 * time.Millisecond})
	id := enqueue(t, ob, "net", srv.URL, "H1")
	d := waitState(t, ob, id, StateDelivered, 5*time.Second)
	if d.Tries != 2 || d.Attempts[0].Error == "" {
		t.Fatalf("first attempt should time out and the second succeed: %+v", d.Attempts)
	}
}

func TestMaxAgeBuries(t *testing.T) {
	ob, _ := newTestOutbox(t, Options{})
	rc := newReceiver(t, func(*http.Request, int) (int, http.Header) { return 503, nil })
	id := NewID()
	_, err := ob.Record(Conversion{ID: NewID()}, []Delivery{{ID: id, Network: "net", Key: "k", MaxAge: 100 * time.Millisecond,
		Request: postback.Request{Method: "GET", URL: rc.URL + "/?order=M1"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := waitState(t, ob, id, StateDead, 5*time.Second)
	if !strings.Contains(d.Reason, "max age") {
		t.Fatalf("reason %q", d.Reason)
	}
}

func TestFailingNetworkDoesNotStallOthers(t *testing.T) {
	var pauses atomic.Int64
	ob, _ := newTestOutbox(t, Options{PauseAfter: 3, PauseBase: time.Second, OnPause: func(_ string, p bool) {
		if p {
			pauses.Add(1)
		}
	}})
	bad := newReceiver(t, func(*http.Request, int) (int, http.Header) { return 502, nil })
	good := newReceiver(t, nil)
	for i := range 20 {
		enqueue(t, ob, "bad", bad.URL, fmt.Sprintf("b%d", i))
	}
	var ids []string
	for i := range 50 {
		ids = append(ids, enqueue(t, ob, "good", good.URL, fmt.Sprintf("g%d", i)))
	}
	for _, id := range ids {
		waitState(t, ob, id, StateDelivered, 5*time.Second)
	}
	if pauses.Load() == 0 {
		t.Fatal("the failing network was never paused")
	}
	// While paused, the failing network gets no more requests than the
	// ones in flight when the pause began.
	before := bad.total.Load()
	time.Sleep(300 * time.Millisecond)
	if after := bad.total.Load(); after-before > 8 {
		t.Fatalf("paused network got %d more requests", after-before)
	}
}

func TestStopReturnsClaimedDeliveries(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ob := New(st)
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	d := NewDispatcher(ob, Options{Timeout: 5 * time.Second, Retry: RetryPolicy{Base: 10 * time.Millisecond}})
	d.SetDestinations(map[string]Destination{"net": {Concurrency: 1}})
	d.Start()
	var ids []string
	for i := range 5 {
		ids = append(ids, enqueue(t, ob, "net", srv.URL, fmt.Sprintf("s%d", i)))
	}
	time.Sleep(100 * time.Millisecond)
	d.Stop()
	// Every delivery is still queued and due now, not leased into the future.
	for _, id := range ids {
		del, err := ob.Delivery(id)
		if err != nil {
			t.Fatal(err)
		}
		if del.State != StateQueued && del.State != StateRetrying {
			t.Fatalf("%s: state %s", id, del.State)
		}
		if del.NextAttempt.After(time.Now().Add(time.Second)) {
			t.Fatalf("%s: still leased until %v after stop", id, del.NextAttempt)
		}
	}
	pending, _ := ob.Pending()
	if pending["net"] != 5 {
		t.Fatalf("pending = %v", pending)
	}
}

// TestManyConversionsWithTransientFailures queues 10,000 deliveries to a
// receiver that fails 30% of requests at random; by the end each order is
// received successfully exactly once.
func TestManyConversionsWithTransientFailures(t *testing.T) {
	const n = 10000
	var mu sync.Mutex
	ok := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(10) < 3 {
			w.WriteHeader(503)
			return
		}
		mu.Lock()
		ok[r.URL.Query().Get("order")]++
		mu.Unlock()
	}))
	defer srv.Close()
	// A generous timeout: a slow answer that times out is retried, and that
	// second delivery is the at-least-once promise, not a bug this test hunts.
	ob, _ := newTestOutbox(t, Options{PauseAfter: 1000, Timeout: 30 * time.Second})
	ids := make([]string, n)
	for i := range n {
		ids[i] = enqueue(t, ob, "net", srv.URL, fmt.Sprintf("o%d", i))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := ob.Pending()
		if err != nil {
			t.Fatal(err)
		}
		if p["net"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pending: %v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ok) != n {
		t.Fatalf("%d orders delivered, want %d", len(ok), n)
	}
	for oid, c := range ok {
		if c != 1 {
			for i, id := range ids {
				if fmt.Sprintf("o%d", i) == oid {
					d, _ := ob.Delivery(id)
					t.Logf("%+v", d.Attempts)
				}
			}
			t.Fatalf("order %s delivered %d times", oid, c)
		}
	}
	for _, id := range ids[:100] {
		if d, _ := ob.Delivery(id); d.State != StateDelivered {
			t.Fatalf("%s: %s", id, d.State)
		}
	}
}
