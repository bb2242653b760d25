package outbox

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// BenchmarkDeliveries measures the whole send path on an on-disk Badger
// store: deliveries recorded in batches of 100, claimed for free workers,
// rendered, sent to a loopback receiver answering 200, and recorded as
// delivered. The clock runs from the first recording until the queue is
// empty. Run it with
//
//	go test -run '^$' -bench BenchmarkDeliveries -benchtime 20000x ./internal/outbox/
func BenchmarkDeliveries(b *testing.B) {
	var received atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		_, _ = w.Write([]byte("OK"))
	}))
	defer rc.Close()
	st := openStore(b)
	d := New(st, Options{})
	pd, _ := postback.New(postback.Config{URL: rc.URL + "/pb?order={order_id}&cid={click_id}"})
	d.Configure(Config{Destinations: map[string]Destination{"net": {Destination: pd}}})
	d.Start()
	defer d.Stop()
	b.ResetTimer()
	now := time.Now()
	for i := 0; i < b.N; i += 100 {
		var ds []record.Delivery
		for j := i; j < min(i+100, b.N); j++ {
			id := fmt.Sprint("b", j)
			ds = append(ds, record.Delivery{ID: record.NewID(now), Network: "net", Event: "purchase", OrderID: id, Key: "net/purchase/" + id,
				MaxAge: time.Hour, Postback: record.Postback{Network: "net", Order: order.Order{ID: id, Event: "purchase"}, Touchpoint: record.Touchpoint{ClickID: "c"}}})
		}
		if _, err := st.Record(bg, store.Recording{Deliveries: ds, DedupUntil: now.Add(time.Hour), Now: now}); err != nil {
			b.Fatal(err)
		}
		d.Wake()
	}
	// The queue is asked only once the receiver has seen every delivery:
	// its statistics read the whole index.
	for received.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	for {
		qs, err := st.QueueStats(bg, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if len(qs) == 0 || qs[0].Queued+qs[0].Retrying+qs[0].Running == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
