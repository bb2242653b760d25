package outbox

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// TestExpiredLeaseOfQueuedDeliveryIsNotSentTwice covers a slow network:
// deliveries claimed into the in-memory queue wait behind slow attempts
// until their lease (Timeout + 30s) runs out. The lease exists for crash
// recovery; within the running process the poll must not claim them a
// second time, or each would be sent twice, the second time after its
// success was recorded.
func TestExpiredLeaseOfQueuedDeliveryIsNotSentTwice(t *testing.T) {
	// A clock the test can move forward; set before any goroutine reads it.
	var skew atomic.Int64
	realNow := now
	now = func() time.Time { return realNow().Add(time.Duration(skew.Load())) }
	t.Cleanup(func() { now = realNow })

	var mu sync.Mutex
	got := map[string]int{}
	slow := make(chan struct{})
	var slowOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order := r.URL.Query().Get("order")
		mu.Lock()
		got[order]++
		first := order == "L0" && got[order] == 1
		mu.Unlock()
		if first { // a slow answer that holds the only worker
			select {
			case <-slow:
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()

	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ob := New(st)
	d := NewDispatcher(ob, Options{Timeout: 5 * time.Second, Retry: RetryPolicy{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	d.SetDestinations(map[string]Destination{"net": {Concurrency: 1}})
	t.Cleanup(func() { d.Stop(); _ = st.Close() })
	const n = 5
	ids := make([]string, n)
	for i := range n {
		ids[i] = enqueue(t, ob, "net", srv.URL, fmt.Sprintf("L%d", i))
	}
	d.Start()

	// The worker is busy with L0; the others wait in the queue, leased.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		started := got["L0"] == 1
		mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first attempt did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Their leases run out while they wait; the poll looks again.
	skew.Store(int64(time.Minute))
	d.Wake()
	time.Sleep(100 * time.Millisecond)
	d.Wake()
	time.Sleep(100 * time.Millisecond)
	slowOnce.Do(func() { close(slow) })

	for _, id := range ids {
		waitState(t, ob, id, StateDelivered, 10*time.Second)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if c := got[fmt.Sprintf("L%d", i)]; c != 1 {
			t.Errorf("order L%d sent %d times, want 1", i, c)
		}
	}
	for _, id := range ids {
		del, err := ob.Delivery(id)
		if err != nil {
			t.Fatal(err)
		}
		if del.Tries != 1 || len(del.Attempts) != 1 {
			t.Errorf("delivery %s (order %s): %d tries, %d attempts logged, want 1", id, del.OrderID, del.Tries, len(del.Attempts))
		}
	}
}
