package main

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store/postgres"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

// clusterBacklog is the number of queued deliveries the cluster drains.
const clusterBacklog = 20_000

// BenchmarkClusterDrain measures the deliveries per second of one and of
// two Caddy processes (the built binary) sending from one PostgreSQL
// queue of clusterBacklog deliveries to a loopback receiver, and checks
// that each was delivered once.
//
//	go test ./cmd/caddy -run '^$' -bench ClusterDrain -benchtime 1x
func BenchmarkClusterDrain(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(map[int]string{1: "nodes=1", 2: "nodes=2"}[n], func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				rc := newClusterReceiver(b, nil)
				dsn := pgtest.Start(b).Database(b)
				st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn})
				if err != nil {
					b.Fatal(err)
				}
				prefill(b, st, "aff", clusterBacklog)
				_ = st.Close()
				b.StartTimer()
				start := time.Now()
				nodes := startNodes(b, dsn, rc.URL, n)
				err = waitUntil(10*time.Minute, 20*time.Millisecond, func() error {
					if len(rc.delivered()) < clusterBacklog {
						return errNotYet
					}
					return nil
				})
				elapsed := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatalf("%d of %d delivered in 10 minutes\n%s", len(rc.delivered()), clusterBacklog, nodes[0].tail())
				}
				settle(b, nodes[0], time.Minute)
				perNode := map[string]int{}
				for o, c := range rc.delivered() {
					if c != 1 {
						b.Errorf("order %s delivered %d times", o, c)
					}
				}
				rc.mu.Lock()
				for _, h := range rc.hits {
					perNode[h.node]++
				}
				rc.mu.Unlock()
				for _, nd := range nodes {
					nd.kill()
				}
				b.ReportMetric(clusterBacklog/elapsed.Seconds(), "deliveries/s")
				b.ReportMetric(0, "ns/op")
				b.Logf("%d nodes: %d deliveries in %s, by node %v", n, clusterBacklog, elapsed.Round(time.Millisecond), perNode)
			}
		})
	}
}
