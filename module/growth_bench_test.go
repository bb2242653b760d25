package module

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
	"github.com/caddy-postback/caddy-postback/internal/store/storetest"
)

// growthSessions is how many sessions the large stores of BenchmarkGrowth
// hold; growthRounds, how many times each case runs on each store.
const (
	growthSessions = 1_000_000
	growthRounds   = 4
)

// BenchmarkGrowth measures a new click and a confirmation page on an empty
// store and on one holding a million sessions, side by side, on Badger (on
// disk) and PostgreSQL (a throwaway server, see pgtest), in rounds that
// alternate the two stores. The large stores are filled once per process
// and kept across -count runs; each run gets a fresh empty store. It
// reports the disk a stored session takes.
//
//	go test ./module -run '^$' -bench Growth -benchtime 3000x -timeout 1h
func BenchmarkGrowth(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB) growthStore
	}{
		{"badger", openGrowthBadger},
		{"postgres", openGrowthPostgres},
	} {
		b.Run(eng.name, func(b *testing.B) {
			large := largeGrowthStore(b, eng.name, eng.open)
			empty := eng.open(b).st
			envs := []struct {
				name string
				env  *benchEnv
			}{
				{"empty", newBenchEnvStore(b, empty, thankYouRule())},
				{"1M", newBenchEnvStore(b, nopCloser{large}, thankYouRule())},
			}
			// Rounds alternate the stores, so that the machine's drift falls
			// on both.
			for range growthRounds {
				for _, e := range envs {
					b.Run("click/"+e.name, func(b *testing.B) { benchNewClicks(b, e.env) })
				}
				for _, e := range envs {
					b.Run("confirmation/"+e.name, func(b *testing.B) { benchConfirmations(b, e.env) })
				}
			}
		})
	}
}

// nopCloser keeps a shared store open when one benchmark's env closes it.
type nopCloser struct{ store.Store }

func (nopCloser) Close() error { return nil }

// largeGrowthStores are the engines' large stores, filled once per
// process.
var (
	largeGrowthMu     sync.Mutex
	largeGrowthStores = map[string]store.Store{}
)

// largeGrowthStore returns the engine's large store, filling it on first
// use: sessions with one click each, as a landing page captures them,
// written by 16 visitors at once.
func largeGrowthStore(b *testing.B, engine string, open func(testing.TB) growthStore) store.Store {
	largeGrowthMu.Lock()
	defer largeGrowthMu.Unlock()
	if l := largeGrowthStores[engine]; l != nil {
		return l
	}
	// The store outlives this b: the -count runs after the first one use
	// it too, and it is closed with the process.
	g := open(processTB{b})
	st := g.st
	before := g.size()
	start := time.Now()
	now := time.Now()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > growthSessions || failed.Load() != nil {
					return
				}
				at := now.Add(-time.Duration(i%(24*60)) * time.Minute)
				click := fmt.Sprintf("seed-%d-%x", i, at.UnixNano())
				tp := record.Touchpoint{Network: "demo", Param: "clickid", ClickID: click, CapturedAt: at, ExpiresAt: at.Add(DefaultWindow),
					LandingURL: "https://shop.example/?clickid=" + click + "&utm_source=partner&sub1=spring", Referrer: "https://partner.example/",
					ClientIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
					Subs: map[string]string{"sub1": "spring", "utm_source": "partner"}}
				err := st.CreateSession(context.Background(), &record.Session{ID: capture.NewSessionID(), CreatedAt: at, Touchpoints: []record.Touchpoint{tp}})
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	// Let the engine finish with the load, as a store that filled over
	// weeks would have: what is measured is its size, not a backlog of
	// compactions or vacuuming.
	g.settle()
	b.Logf("%s: stored %d sessions in %s, %.0f disk bytes each", engine, growthSessions, time.Since(start).Round(time.Second),
		float64(g.size()-before)/growthSessions)
	largeGrowthStores[engine] = st
	return st
}

// processTB is a testing.TB whose cleanups never run, for resources that
// live as long as the benchmark process.
type processTB struct{ testing.TB }

func (processTB) Cleanup(func()) {}

func (p processTB) TempDir() string {
	dir, err := os.MkdirTemp("", "postback-bench-")
	if err != nil {
		p.Fatal(err)
	}
	processDirs = append(processDirs, dir)
	return dir
}

// processDirs are removed by TestMain when the process ends.
var processDirs []string

// growthStore is a store with the means to measure it.
type growthStore struct {
	st store.Store
	// size is the disk space the store's sessions take.
	size func() int64
	// settle waits for the engine's work after a bulk load.
	settle func()
}

func openGrowthBadger(tb testing.TB) growthStore {
	dir := tb.TempDir()
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, MinFree: 1 << 20, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	return growthStore{st: st,
		size: func() int64 { return storetest.DiskUsage(tb, dir) },
		settle: func() {
			if err := st.Purge(); err != nil { // compacts every level into the last
				tb.Fatal(err)
			}
		}}
}

func openGrowthPostgres(tb testing.TB) growthStore {
	dsn := pgtest.Start(tb).Database(tb)
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 16, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	exec := func(sql string, dst ...any) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close(ctx)
		if len(dst) > 0 {
			err = conn.QueryRow(ctx, sql).Scan(dst...)
		} else {
			_, err = conn.Exec(ctx, sql)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return growthStore{st: st,
		size: func() int64 {
			var n int64
			exec(`SELECT pg_total_relation_size('postback.sessions') + pg_total_relation_size('postback.touchpoints')`, &n)
			return n
		},
		settle: func() {
			exec(`VACUUM ANALYZE`)
			exec(`CHECKPOINT`)
		}}
}
