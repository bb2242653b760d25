package outbox

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// BenchmarkDeliveries measures the whole send path: deliveries recorded in
// batches on an on-disk Badger store, claimed, sent to a loopback receiver
// answering 200, and recorded as delivered. The clock runs from the first
// Record until the last delivery's outcome is committed, so it includes the
// enqueue cost (with Durable, one sync per batch). Run it with
//
//	go test -run '^$' -bench BenchmarkDeliveries -benchtime 20000x ./internal/outbox/
func BenchmarkDeliveries(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			benchmarkDeliveries(b, durable)
		})
	}
}

// benchBatch is how many deliveries one Record call writes: a batch of
// conversions arriving together, and small enough for one transaction.
const benchBatch = 100

func benchmarkDeliveries(b *testing.B, durable bool) {
	var received atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		_, _ = w.Write([]byte("OK"))
	}))
	defer rc.Close()

	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ob := New(st)
	ob.Configure(Settings{Durable: durable})
	var delivered, other atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	d := NewDispatcher(ob, Options{Timeout: 10 * time.Second, OnOutcome: func(_, state string) {
		if state != string(StateDelivered) {
			other.Add(1)
			return
		}
		if delivered.Add(1) == n {
			close(done)
		}
	}})
	d.SetDestinations(map[string]Destination{"bench": {}})
	d.Start()
	defer d.Stop()

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += benchBatch {
		batch := make([]Delivery, 0, benchBatch)
		for j := i; j < min(i+benchBatch, b.N); j++ {
			orderID := fmt.Sprintf("B%08d", j)
			batch = append(batch, Delivery{
				ID: NewID(), Network: "bench", Event: "purchase", OrderID: orderID,
				Key:     "bench/purchase/" + orderID,
				Request: postback.Request{Method: "GET", URL: rc.URL + "/pb?order=" + orderID},
			})
		}
		res, err := ob.Record(Conversion{ID: NewID()}, batch, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Queued) != len(batch) {
			b.Fatalf("queued %d of %d", len(res.Queued), len(batch))
		}
	}
	// Bounded: at the target rate b.N deliveries take b.N/2000 s; allow a
	// slow machine ten times that, plus a minute.
	limit := time.Minute + time.Duration(b.N)*5*time.Millisecond
	select {
	case <-done:
	case <-time.After(limit):
		b.Fatalf("delivered %d of %d within %s (other outcomes %d, received %d)",
			delivered.Load(), b.N, limit, other.Load(), received.Load())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if o := other.Load(); o != 0 {
		b.Fatalf("%d attempts did not deliver", o)
	}
	if got := received.Load(); got != n {
		b.Fatalf("receiver got %d requests for %d deliveries", got, n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}
