package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

var bg = context.Background()

// waitFor polls cond until it returns nil, for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func touchpoint(network, clickID string, at time.Time, window time.Duration) record.Touchpoint {
	return record.Touchpoint{Network: network, ClickID: clickID, CapturedAt: at, ExpiresAt: at.Add(window),
		LandingURL: "https://shop.example/?clickid=" + clickID}
}

// count returns the number of rows of a table in the store's schema.
func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(bg, s.sql("SELECT count(*) FROM {s}."+table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigrationsOnceUnderRace opens four stores at once on one empty
// database: every one must be ready when Open returns, with no failed
// attempt, and each migration must be recorded once.
func TestMigrationsOnceUnderRace(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	core, logs := observer.New(zapcore.InfoLevel)
	stores := make([]*Store, 4)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i] = open(t, Options{DSN: dsn, Logger: zap.New(core)})
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if !s.ready.Load() {
			t.Errorf("store %d not ready after Open: %v", i, *s.notReady.Load())
		}
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len() + logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Fatalf("%d warnings or errors while four nodes migrated: %v", n, logs.All())
	}
	all, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("postgres schema migrated").Len(); n != 1 {
		t.Errorf("%d nodes applied migrations, want 1", n)
	}
	var versions, distinct int
	err = stores[0].pool.QueryRow(bg, stores[0].sql("SELECT count(*), count(DISTINCT version) FROM {s}.schema_migrations")).Scan(&versions, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(all) || distinct != len(all) {
		t.Fatalf("schema_migrations holds %d rows (%d versions), want %d", versions, distinct, len(all))
	}
	// A node that starts later applies nothing.
	open(t, Options{DSN: dsn, Logger: zap.New(core)})
	if n := logs.FilterMessage("postgres schema migrated").Len(); n != 1 {
		t.Errorf("a later start applied migrations again")
	}
}

// TestSchemasApart: two schemas in one database are two stores.
func TestSchemasApart(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a := open(t, Options{DSN: dsn, Schema: "tracker_a"})
	b := open(t, Options{DSN: dsn, Schema: "tracker_b"})
	now := time.Now()
	if err := a.CreateSession(bg, &record.Session{ID: "s1", CreatedAt: now, Touchpoints: []record.Touchpoint{touchpoint("n", "c", now, time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Session(bg, "s1", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session of schema tracker_a read in tracker_b: %v", err)
	}
	if _, err := Open(bg, Options{DSN: dsn, Schema: `x"; DROP TABLE y; --`}); err == nil {
		t.Fatal("a schema name that needs quoting was accepted")
	}
}

// TestOpenWhileDown: with the database unreachable, Open returns a store
// at once; every call fails with ErrUnavailable until the database
// answers, and then the store works without being reopened.
func TestOpenWhileDown(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.Start(t).Database(t))
	proxy.Cut()
	started := time.Now()
	s := open(t, Options{DSN: dsn})
	if took := time.Since(started); took > 3*time.Second {
		t.Errorf("Open took %v with the database down", took)
	}
	now := time.Now()
	sess := &record.Session{ID: "s1", CreatedAt: now, Touchpoints: []record.Touchpoint{touchpoint("n", "c", now, time.Hour)}}
	if err := s.CreateSession(bg, sess); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateSession with the database down: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(bg); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with the database down: %v, want ErrUnavailable", err)
	}
	proxy.Restore()
	waitFor(t, "the store works once the database answers", func() error { return s.CreateSession(bg, sess) })
	if got, err := s.Session(bg, "s1", now); err != nil || len(got.Touchpoints) != 1 {
		t.Fatalf("session after recovery: %+v, %v", got, err)
	}
}

// TestOpenNoServer: nothing listens at the address; Open still returns,
// and the errors name no password.
func TestOpenNoServer(t *testing.T) {
	port := closedPort(t)
	s := open(t, Options{DSN: fmt.Sprintf("postgres://caddy:s3cr3t-pw@127.0.0.1:%d/tracker", port), ConnectTimeout: time.Second})
	err := s.Ping(bg)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with no server: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("an error shows the password: %v", err)
	}
	_, err = Open(bg, Options{DSN: "postgres://caddy:s3cr3t-pw@127.0.0.1:notaport/tracker"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("a bad DSN: %v, want an error that shows no password", err)
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestCloseStopsStore: after Close, calls fail with ErrUnavailable and the
// background work has ended.
func TestCloseStopsStore(t *testing.T) {
	s := open(t, Options{DSN: pgtest.Start(t).Database(t)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("the background goroutine still runs after Close")
	}
	if err := s.Ping(bg); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping after Close: %v", err)
	}
}

// TestSweeperDeletesInBatches fills tables with expired rows and checks
// that a sweep deletes them, SweepBatch rows per statement, and leaves
// live rows alone; then that the background sweeper does it by itself.
func TestSweeperDeletesInBatches(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	now := time.Now().UTC()
	clock.Store(&now)
	s := open(t, Options{DSN: pgtest.Start(t).Database(t), SweepBatch: 100, SweepInterval: time.Hour,
		Now: func() time.Time { return *clock.Load() }})
	past := now.Add(-48 * time.Hour)
	for i := range 250 {
		id := fmt.Sprintf("old-%d", i)
		sess := &record.Session{ID: id, CreatedAt: past, Touchpoints: []record.Touchpoint{touchpoint("n", id, past, time.Hour)}}
		if err := s.CreateSession(bg, sess); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("live-%d", i)
		sess := &record.Session{ID: id, CreatedAt: now, Touchpoints: []record.Touchpoint{touchpoint("n", id, now, time.Hour)}}
		if err := s.CreateSession(bg, sess); err != nil {
			t.Fatal(err)
		}
	}
	deleted, statements, err := s.sweepTable(swept{"touchpoints", "session_id, network, click_id"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 250 || statements != 3 {
		t.Fatalf("swept %d touchpoints in %d statements, want 250 in 3", deleted, statements)
	}
	if n := count(t, s, "touchpoints"); n != 3 {
		t.Fatalf("%d touchpoints left, want the 3 live ones", n)
	}
	// Delivered deliveries go when their retention ends; waiting ones never.
	res, err := s.Record(bg, store.Recording{Now: past, DedupUntil: past.Add(time.Hour), Deliveries: []record.Delivery{
		{ID: record.NewID(past), Network: "n", Key: "n/purchase/1", Request: record.Request{Method: "GET", URL: "https://n.example/"}},
		{ID: record.NewID(past), Network: "n", Key: "n/purchase/2", Request: record.Request{Method: "GET", URL: "https://n.example/"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	claimed, _, err := s.Claim(bg, "n", "w", 1, past, past.Add(time.Minute))
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := s.Complete(bg, claimed[0].ID, "w", record.Attempt{At: past, Status: 200}, claimed[0].Request, past.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A sweep at a wall clock a year on removes every expired row of every
	// table.
	later := now.Add(365 * 24 * time.Hour)
	clock.Store(&later)
	if deleted := s.sweep(); deleted != 253+3+2+1 {
		t.Errorf("the sweep deleted %d rows, want 259 (253 sessions, 3 touchpoints, 2 markers, 1 delivery)", deleted)
	}
	if n := count(t, s, "sessions") + count(t, s, "touchpoints") + count(t, s, "markers"); n != 0 {
		t.Fatalf("%d sessions, touchpoints and markers left after a sweep", n)
	}
	if n := count(t, s, "deliveries"); n != 1 {
		t.Fatalf("%d deliveries left, want the waiting one", n)
	}
	waiting := res.Queued[0]
	if waiting == claimed[0].ID {
		waiting = res.Queued[1]
	}
	if _, err := s.Delivery(bg, waiting, later); err != nil {
		t.Fatalf("the waiting delivery: %v", err)
	}
}

// TestSweeperRunsInBackground: with a short interval the engine's own
// goroutine deletes what expired, and Close stops it.
func TestSweeperRunsInBackground(t *testing.T) {
	now := time.Now().UTC()
	s := open(t, Options{DSN: pgtest.Start(t).Database(t), SweepInterval: 20 * time.Millisecond,
		Now: func() time.Time { return now.Add(48 * time.Hour) }})
	sess := &record.Session{ID: "s", CreatedAt: now, Touchpoints: []record.Touchpoint{touchpoint("n", "c", now, time.Hour)}}
	if err := s.CreateSession(bg, sess); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background sweeper deletes the expired session", func() error {
		if n := count(t, s, "touchpoints") + count(t, s, "sessions"); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
}

// TestSeveralNodes: stores on one database are nodes of a cluster; one
// order recorded on all of them at once queues one delivery, and their
// claims never share a delivery.
func TestSeveralNodes(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	nodes := []*Store{open(t, Options{DSN: dsn}), open(t, Options{DSN: dsn}), open(t, Options{DSN: dsn})}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var queued atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodes[i%len(nodes)]
			conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
				Order: order.Order{Source: "webhook:stripe", Event: "purchase", ID: "o1", Status: order.StatusApproved}}
			res, err := node.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/o1", Now: now, DedupUntil: now.Add(time.Hour),
				Deliveries: []record.Delivery{{ID: record.NewID(now), Network: "n", Key: "n/purchase/o1", Request: record.Request{Method: "GET", URL: "https://n.example/"}}}})
			if err != nil {
				t.Error(err)
				return
			}
			queued.Add(int32(len(res.Queued)))
		}()
	}
	wg.Wait()
	if n := queued.Load(); n != 1 {
		t.Fatalf("%d deliveries queued by 12 recordings of one order on 3 nodes, want 1", n)
	}
	if n := count(t, nodes[0], "conversions"); n != 1 {
		t.Fatalf("%d conversions stored, want 1", n)
	}

	const total = 300
	fill(t, nodes[0], "m", total, now)
	var mu sync.Mutex
	seen := map[string]int{}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, owner := nodes[i%len(nodes)], fmt.Sprintf("w%d", i)
			for {
				ds, _, err := node.Claim(bg, "m", owner, 5, now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d of %d deliveries claimed", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %s claimed %d times", id, n)
		}
	}
}

// TestErrorClasses: the errors that mean the database cannot serve wrap
// ErrUnavailable; others do not.
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"read-only transaction", &pgconn.PgError{Code: "25006"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"connection closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"deadline", context.DeadlineExceeded, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"conflict", store.ErrConflict, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{}
			err := s.fail("testing", tc.err)
			if got := errors.Is(err, store.ErrUnavailable); got != tc.want {
				t.Fatalf("%v wraps ErrUnavailable: %v, want %v", err, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("%v does not wrap %v", err, tc.err)
			}
		})
	}
}

// TestSerializationRetried: serialization failures and deadlocks run the
// call again, up to maxTries times; other errors do not.
func TestSerializationRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"serialization failure then success", 2, &pgconn.PgError{Code: "40001"}, 3, false},
		{"deadlock then success", 1, &pgconn.PgError{Code: "40P01"}, 2, false},
		{"serialization failures throughout", 100, &pgconn.PgError{Code: "40001"}, maxTries, true},
		{"unique violation", 100, &pgconn.PgError{Code: "23505"}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{}
			s.ready.Store(true)
			calls := 0
			err := s.run(bg, "testing", func(context.Context) error {
				calls++
				if calls <= tc.failures {
					return tc.err
				}
				return nil
			})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}

// fill queues n deliveries of network due at now, written in one statement
// (the benchmarks and the plan test need many).
func fill(t testing.TB, s *Store, network string, n int, now time.Time) {
	t.Helper()
	body, err := encodeJSON(immutablePart(record.Delivery{Network: network, Event: "purchase", MaxAge: 72 * time.Hour,
		Postback: record.Postback{Network: network, Touchpoint: record.Touchpoint{Network: network, ClickID: "click"}}}))
	if err != nil {
		t.Fatal(err)
	}
	// IDs as record.NewID makes them: milliseconds, then a unique part.
	_, err = s.pool.Exec(bg, s.sql(`
INSERT INTO {s}.deliveries (id, network, state, queued_at, next_attempt, request, delivery)
SELECT $1 || lpad(to_hex(g), 20, '0'), $2, 'queued', $3, $3, '{"method":"GET","url":"https://n.example/"}', $4::jsonb
FROM generate_series(1, $5::int) AS g`), record.IDFloor(now)[:12], network, now, body, n)
	if err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrips: the capture path and the queue's hot calls each take one
// round trip to the database (counted as the writes the store sends
// through a proxy), once their statements are prepared.
func TestRoundTrips(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.Start(t).Database(t))
	s := open(t, Options{DSN: dsn, MaxConns: 1})
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := 0
	newSession := func() error {
		n++
		id := fmt.Sprintf("s%d", n)
		return s.CreateSession(bg, &record.Session{ID: id, CreatedAt: now, Touchpoints: []record.Touchpoint{touchpoint("n", "c"+id, now, time.Hour)}})
	}
	addTouchpoint := func() error {
		return s.AddTouchpoints(bg, "s1", []record.Touchpoint{touchpoint("m", fmt.Sprint("a", n), now, time.Hour)}, "1.2", 20, now)
	}
	readSession := func() error { _, err := s.Session(bg, "s1", now); return err }
	findClicks := func() error { _, err := s.FindClicks(bg, "cs1", now, 10); return err }
	// A conversion credited to two networks, a delivery to each.
	recordOrder := func() error {
		n++
		orderID := fmt.Sprint("o", n)
		conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			Order: order.Order{Source: "page:checkout", Event: "purchase", ID: orderID, Status: order.StatusApproved}}
		var ds []record.Delivery
		for _, network := range []string{"n", "m"} {
			conv.Credits = append(conv.Credits, record.Credit{Network: network, Touchpoint: touchpoint(network, "c", now, time.Hour)})
			ds = append(ds, record.Delivery{ID: record.NewID(now), Network: network, Key: network + "/purchase/" + orderID,
				Request: record.Request{Method: "GET", URL: "https://n.example/"}})
		}
		res, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/" + orderID, Deliveries: ds,
			Now: now, DedupUntil: now.Add(time.Hour)})
		if err == nil && (len(res.Queued) != 2 || res.Conversion == nil) {
			err = fmt.Errorf("recorded %+v", res)
		}
		return err
	}
	var claimed []record.Delivery
	claim := func() error {
		var err error
		claimed, _, err = s.Claim(bg, "n", "w", 1, now, now.Add(time.Minute))
		if err == nil && len(claimed) != 1 {
			err = fmt.Errorf("claimed %d", len(claimed))
		}
		return err
	}
	complete := func() error {
		return s.Complete(bg, claimed[0].ID, "w", record.Attempt{At: now, Status: 200}, claimed[0].Request, now.Add(time.Hour))
	}
	trips := func(call func() error) int64 {
		t.Helper()
		before := proxy.Sends()
		if err := call(); err != nil {
			t.Fatal(err)
		}
		return proxy.Sends() - before
	}
	for _, tc := range []struct {
		name string
		call func() error
		want int64
	}{
		{"CreateSession", newSession, 1},
		{"AddTouchpoints", addTouchpoint, 1},
		{"Session", readSession, 1},
		{"FindClicks", findClicks, 1},
		// begin; the markers; the conversion and the deliveries; commit.
		{"Record", recordOrder, 4},
		{"Claim", claim, 1},
		{"Complete", complete, 1},
	} {
		// The first call prepares the statements.
		trips(tc.call)
		if tc.name == "Complete" {
			trips(recordOrder)
			trips(claim)
		}
		got := trips(tc.call)
		t.Logf("%s: %d round trips", tc.name, got)
		if got != tc.want {
			t.Errorf("%s took %d round trips, want %d", tc.name, got, tc.want)
		}
	}
}

// TestPurgeVacuumsAfterAnErasure: an erasure leaves the erased rows' old
// versions in the tables' pages until a vacuum; Purge vacuums the tables the
// erasure changed.
func TestPurgeVacuumsAfterAnErasure(t *testing.T) {
	s := open(t, Options{DSN: pgtest.Start(t).Database(t), PurgeEvery: time.Hour})
	ctx := context.Background()
	now := time.Now()
	tp := record.Touchpoint{Network: "aff", ClickID: "ERASE-ME", CapturedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, &record.Session{ID: "gone", CreatedAt: now, Touchpoints: []record.Touchpoint{tp}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseSession(ctx, "gone", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !s.erased.Load() {
		t.Fatal("an erasure did not ask for a purge")
	}
	deadTuples := func() int64 {
		var n int64
		if err := s.pool.QueryRow(ctx, s.sql(`SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = '`+s.opts.Schema+`' AND relname = 'touchpoints'`)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	var vacuumed time.Time
	if err := s.pool.QueryRow(ctx, s.sql(`SELECT coalesce(last_vacuum, 'epoch') FROM pg_stat_user_tables WHERE schemaname = '`+s.opts.Schema+`' AND relname = 'touchpoints'`)).Scan(&vacuumed); err != nil {
		t.Fatal(err)
	}
	if vacuumed.Before(now.Add(-time.Minute)) || s.erased.Load() {
		t.Fatalf("touchpoints last vacuumed %v (dead tuples %d), purge still pending %v", vacuumed, deadTuples(), s.erased.Load())
	}
}
