package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

// TestClaimUsesDueIndex fills the queue with 100,000 deliveries of ten
// networks in every state and checks that a claim reads the partial index
// of waiting deliveries instead of the table, and takes little time.
func TestClaimUsesDueIndex(t *testing.T) {
	s := open(t, Options{DSN: pgtest.Start(t).Database(t)})
	now := time.Now().UTC()
	// 10 networks; 60% delivered, 10% dead, 30% waiting with due times
	// spread over three days (a tenth of them due now).
	_, err := s.pool.Exec(bg, s.sql(`
INSERT INTO {s}.deliveries (id, network, state, queued_at, next_attempt, expires_at, request, delivery)
SELECT $1 || lpad(to_hex(g), 20, '0'), 'net' || (g % 10),
	CASE WHEN g % 10 < 6 THEN 'delivered' WHEN g % 10 = 6 THEN 'dead' ELSE 'queued' END,
	$2::timestamptz,
	CASE WHEN g % 10 >= 7 THEN $2::timestamptz + ((g % 1000) - 100) * interval '4 minutes' END,
	CASE WHEN g % 10 < 7 THEN $2::timestamptz + interval '30 days' END,
	'{"method":"GET","url":"https://n.example/"}', '{}'
FROM generate_series(1, 100000) AS g`), record.IDFloor(now)[:12], now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(bg, s.sql("ANALYZE {s}.deliveries")); err != nil {
		t.Fatal(err)
	}
	tx, err := s.pool.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(bg) }()
	rows, err := tx.Query(bg, "EXPLAIN (ANALYZE, BUFFERS) "+s.sql(claim), "net7", now, 8, "w1", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	t.Logf("claim of 8 among 100,000 deliveries:\n%s", plan)
	if !strings.Contains(plan, "deliveries_due") {
		t.Fatal("the claim does not use the index of waiting deliveries")
	}
	if strings.Contains(plan, "Seq Scan on deliveries") {
		t.Fatal("the claim reads the whole table")
	}
}

// BenchmarkCreateSession is the capture path: a new session with its first
// touchpoint, one statement.
func BenchmarkCreateSession(b *testing.B) {
	s := open(b, Options{DSN: pgtest.Start(b).Database(b)})
	now := time.Now().UTC()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("%s-%d", record.NewID(now), n.Add(1))
			tp := record.Touchpoint{Network: "everflow", Param: "_ef_transaction_id", ClickID: "c" + id, CapturedAt: now,
				ExpiresAt: now.Add(30 * 24 * time.Hour), LandingURL: "https://shop.example/?_ef_transaction_id=c" + id,
				ClientIP: "203.0.113.0", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Subs: map[string]string{"sub1": "spring"}}
			if err := s.CreateSession(bg, &record.Session{ID: id, CreatedAt: now, Touchpoints: []record.Touchpoint{tp}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecord records one conversion credited to two networks, with a
// delivery to each, in one transaction.
func BenchmarkRecord(b *testing.B) {
	s := open(b, Options{DSN: pgtest.Start(b).Database(b)})
	now := time.Now().UTC()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			orderID := fmt.Sprintf("order-%d", n.Add(1))
			o := order.Order{Source: "page:checkout", Event: "purchase", ID: orderID, Status: order.StatusApproved,
				Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true, Currency: "EUR"}
			conv := &record.Conversion{ID: record.NewID(now), Order: o, CreatedAt: now, ExpiresAt: now.Add(400 * 24 * time.Hour)}
			var ds []record.Delivery
			for _, network := range []string{"everflow", "meta"} {
				tp := record.Touchpoint{Network: network, ClickID: "click-" + orderID, CapturedAt: now, ExpiresAt: now.Add(time.Hour)}
				conv.Credits = append(conv.Credits, record.Credit{Network: network, Touchpoint: tp, Reason: "last click"})
				ds = append(ds, record.Delivery{ID: record.NewID(now), Network: network, Event: "purchase", OrderID: orderID,
					Key: network + "/purchase/" + orderID, MaxAge: 72 * time.Hour, CreatedAt: now,
					Postback: record.Postback{Network: network, Order: o, Touchpoint: tp, Time: now},
					Request:  record.Request{Method: "GET", URL: "https://n.example/pb?cid=click-" + orderID}})
			}
			res, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/" + orderID, Deliveries: ds,
				DedupUntil: now.Add(400 * 24 * time.Hour), Now: now})
			if err != nil || len(res.Queued) != 2 {
				b.Fatalf("Record: %+v, %v", res, err)
			}
		}
	})
}

// BenchmarkClaimComplete measures the queue's throughput with 8 workers:
// each delivery is claimed, then completed. "one-each": every worker
// claims one delivery at a time; "dispatcher": one claimer fetches as many
// as there are free workers and hands them out, as the outbox does.
func BenchmarkClaimComplete(b *testing.B) {
	const workers = 8
	srv := pgtest.Start(b)
	b.Run("one-each", func(b *testing.B) {
		s := open(b, Options{DSN: srv.Database(b), MaxConns: workers + 2})
		now := time.Now().UTC()
		fill(b, s, "n", b.N, now)
		b.ResetTimer()
		var done atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for {
					ds, _, err := s.Claim(bg, "n", owner, 1, now, now.Add(time.Minute))
					if err != nil {
						b.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					completeOne(b, s, ds[0], owner, now)
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("dispatcher", func(b *testing.B) {
		s := open(b, Options{DSN: srv.Database(b), MaxConns: workers + 2})
		now := time.Now().UTC()
		fill(b, s, "n", b.N, now)
		b.ResetTimer()
		jobs := make(chan record.Delivery)
		free := make(chan struct{}, workers)
		var done atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			free <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d := range jobs {
					completeOne(b, s, d, "dispatcher", now)
					done.Add(1)
					free <- struct{}{}
				}
			}()
		}
		for {
			<-free // at least one worker is free: claim for every free one
			n := 1
			for len(free) > 0 {
				<-free
				n++
			}
			ds, _, err := s.Claim(bg, "n", "dispatcher", n, now, now.Add(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			for range n - len(ds) {
				free <- struct{}{}
			}
			for _, d := range ds {
				jobs <- d
			}
			if len(ds) == 0 && len(free) == workers {
				break
			}
		}
		close(jobs)
		wg.Wait()
		b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "deliveries/s")
	})
}

func completeOne(b *testing.B, s *Store, d record.Delivery, owner string, now time.Time) {
	at := record.Attempt{At: now, Status: 200, LatencyMS: 42, Outcome: "delivered", Snippet: "OK"}
	if err := s.Complete(context.Background(), d.ID, owner, at, d.Request, now.Add(30*24*time.Hour)); err != nil {
		b.Error(err)
	}
}
