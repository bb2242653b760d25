package postgres

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
	"github.com/caddy-postback/caddy-postback/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on dsn and closes it when t ends.
func open(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStore runs the conformance suite: each store gets a database of its
// own and reaches it through a proxy that Break cuts.
func TestStore(t *testing.T) {
	srv := pgtest.Start(t)
	var mu sync.Mutex
	proxies := map[store.Store]*pgtest.Proxy{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			proxy, dsn := pgtest.NewProxy(t, srv.Database(t))
			s := open(t, Options{DSN: dsn, MaxConns: 8})
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("a new store on a running server: %v", err)
			}
			mu.Lock()
			proxies[s] = proxy
			mu.Unlock()
			return s
		},
		Break: func(t *testing.T, s store.Store) func() {
			mu.Lock()
			proxy := proxies[s]
			mu.Unlock()
			proxy.Cut()
			return proxy.Restore
		},
	})
}
