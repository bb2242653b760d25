// Package storetest is the behavioural suite every storage engine must pass:
// the same tests, run against the embedded Badger engine (in memory and on
// disk) and against PostgreSQL, so that everything above the ports is the
// same code for every engine. It follows river's driver test suite: each test
// opens a fresh, empty store, acts through the ports only, and checks what a
// caller would see.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Harness tells the suite how to make stores of one engine.
type Harness struct {
	// Open returns a new, empty store; the suite closes it.
	Open func(t *testing.T) store.Store
	// Break makes the store's storage fail (a full disk, an unreachable
	// database) until restore is called. Nil leaves the fault tests out;
	// the engine's own tests must then say why.
	Break func(t *testing.T, s store.Store) (restore func())
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"SessionCreateAndRead", testSessionCreateAndRead},
		{"SessionAddTouchpoints", testSessionAddTouchpoints},
		{"SessionNotRevived", testSessionNotRevived},
		{"SessionTouchpointCap", testSessionTouchpointCap},
		{"FindClicks", testFindClicks},
		{"EraseSession", testEraseSession},
		{"RecordQueuesAndDedups", testRecordQueuesAndDedups},
		{"RecordDedupConcurrent", testRecordDedupConcurrent},
		{"RecordEventKey", testRecordEventKey},
		{"RecordConversionKey", testRecordConversionKey},
		{"OrderEntryJoin", testOrderEntryJoin},
		{"OrderEntryConflict", testOrderEntryConflict},
		{"OrderEntryConcurrentWriters", testOrderEntryConcurrentWriters},
		{"OrderEntryFirstSessionKept", testOrderEntryFirstSessionKept},
		{"ConversionListing", testConversionListing},
		{"Expiry", testExpiry},
		{"ClaimDueOnly", testClaimDueOnly},
		{"ClaimNeverTwice", testClaimNeverTwice},
		{"OwnerChecked", testOwnerChecked},
		{"RetryAndBury", testRetryAndBury},
		{"ReleaseCountsNoTry", testReleaseCountsNoTry},
		{"RescueAfterLease", testRescueAfterLease},
		{"Replay", testReplay},
		{"DeliveryListing", testDeliveryListing},
		{"QueueStats", testQueueStats},
		{"WebhookLog", testWebhookLog},
		{"MetaGetOrCreate", testMetaGetOrCreate},
		{"Stats", testStats},
		{"StatsConcurrent", testStatsConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
	t.Run("StorageFault", func(t *testing.T) {
		if h.Break == nil {
			t.Skip("this engine's faults are tested by its own tests")
		}
		s := h.Open(t)
		t.Cleanup(func() { _ = s.Close() })
		testStorageFault(t, s, h.Break)
	})
}

var bg = context.Background()

// base is the suite's "now": the wall clock, so that an engine may also
// use the wall clock to remove what expired long ago.
func base() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func touch(network, clickID string, at time.Time) record.Touchpoint {
	return record.Touchpoint{
		Network: network, Param: "clickid", ClickID: clickID, CapturedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour),
		LandingURL: "https://shop.example/?clickid=" + clickID, Referrer: "https://ads.example/", ClientIP: "203.0.113.7",
		UserAgent: "Mozilla/5.0 test", Subs: map[string]string{"sub1": "spring"},
	}
}

func newSession(t *testing.T, s store.Store, at time.Time, tps ...record.Touchpoint) string {
	t.Helper()
	id := record.NewID(at) + "s"
	if err := s.CreateSession(bg, &record.Session{ID: id, CreatedAt: at, Touchpoints: tps, GAClientID: "111.222"}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return id
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func clickIDs(tps []record.Touchpoint) []string {
	var out []string
	for _, tp := range tps {
		out = append(out, tp.ClickID)
	}
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func testSessionCreateAndRead(t *testing.T, s store.Store) {
	now := base()
	tp := touch("everflow", "abc+/=", now)
	tp.Consent = &record.Consent{AdUserData: record.Granted}
	id := newSession(t, s, now, tp, touch("meta", "fb.1", now.Add(time.Millisecond)))
	got := must[*record.Session](t)(s.Session(bg, id, now.Add(time.Second)))
	if got.ID != id || got.GAClientID != "111.222" || !got.CreatedAt.Equal(now) {
		t.Fatalf("session %+v", got)
	}
	if !equal(clickIDs(got.Touchpoints), []string{"abc+/=", "fb.1"}) {
		t.Fatalf("touchpoints %v, want oldest first", clickIDs(got.Touchpoints))
	}
	g := got.Touchpoints[0]
	if g.Network != "everflow" || g.Param != "clickid" || !g.CapturedAt.Equal(now) || !g.ExpiresAt.Equal(tp.ExpiresAt) ||
		g.LandingURL != tp.LandingURL || g.Referrer != tp.Referrer || g.ClientIP != tp.ClientIP ||
		g.UserAgent != tp.UserAgent || g.Subs["sub1"] != "spring" || g.Consent == nil || g.Consent.AdUserData != record.Granted {
		t.Fatalf("touchpoint read back as %+v", g)
	}
	err := s.CreateSession(bg, &record.Session{ID: id, CreatedAt: now, Touchpoints: []record.Touchpoint{tp}})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateSession with one ID: %v, want ErrExists", err)
	}
	if _, err := s.Session(bg, "no-such-session", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
}

func testSessionAddTouchpoints(t *testing.T, s store.Store) {
	now := base()
	id := newSession(t, s, now, touch("everflow", "one", now))
	later := now.Add(time.Minute)
	if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("meta", "two", later)}, "", 20, later); err != nil {
		t.Fatal(err)
	}
	// The same click again moves to the end with its new time; the GA
	// client ID is replaced.
	again := now.Add(2 * time.Minute)
	if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("everflow", "one", again)}, "333.444", 20, again); err != nil {
		t.Fatal(err)
	}
	got := must[*record.Session](t)(s.Session(bg, id, again))
	if !equal(clickIDs(got.Touchpoints), []string{"two", "one"}) || !got.Touchpoints[1].CapturedAt.Equal(again) {
		t.Fatalf("touchpoints %v after a repeated click", got.Touchpoints)
	}
	if got.GAClientID != "333.444" {
		t.Fatalf("GA client ID %q", got.GAClientID)
	}
	// Same click ID of another network is another touchpoint.
	if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("meta", "one", again)}, "", 20, again); err != nil {
		t.Fatal(err)
	}
	got = must[*record.Session](t)(s.Session(bg, id, again))
	if len(got.Touchpoints) != 3 {
		t.Fatalf("touchpoints %v", got.Touchpoints)
	}
}

func testSessionNotRevived(t *testing.T, s store.Store) {
	now := base()
	if err := s.AddTouchpoints(bg, "never-made", []record.Touchpoint{touch("meta", "x", now)}, "", 20, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddTouchpoints to an unknown session: %v, want ErrNotFound", err)
	}
	if _, err := s.Session(bg, "never-made", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session was made by AddTouchpoints: %v", err)
	}
	tp := touch("meta", "short", now)
	tp.ExpiresAt = now.Add(time.Hour)
	id := newSession(t, s, now, tp)
	past := now.Add(2 * time.Hour)
	if _, err := s.Session(bg, id, past); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session whose touchpoints expired: %v, want ErrNotFound", err)
	}
	if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("meta", "y", past)}, "", 20, past); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddTouchpoints to an expired session: %v, want ErrNotFound", err)
	}
	if ok := must[bool](t)(s.EraseSession(bg, id, now, now.Add(time.Hour))); !ok {
		t.Fatal("erasing a live session reported nothing stored")
	}
	if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("meta", "z", now)}, "", 20, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddTouchpoints to an erased session: %v, want ErrNotFound", err)
	}
}

func testSessionTouchpointCap(t *testing.T, s store.Store) {
	now := base()
	id := newSession(t, s, now, touch("everflow", "c0", now))
	for i := 1; i < 8; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		if err := s.AddTouchpoints(bg, id, []record.Touchpoint{touch("everflow", fmt.Sprintf("c%d", i), at)}, "", 5, at); err != nil {
			t.Fatal(err)
		}
	}
	got := must[*record.Session](t)(s.Session(bg, id, now.Add(time.Minute)))
	if !equal(clickIDs(got.Touchpoints), []string{"c3", "c4", "c5", "c6", "c7"}) {
		t.Fatalf("capped touchpoints %v, want the newest five", clickIDs(got.Touchpoints))
	}
	if m := must[[]store.ClickMatch](t)(s.FindClicks(bg, "c0", now, 10)); len(m) != 0 {
		t.Fatalf("a click dropped by the cap is still found: %v", m)
	}
}

func testFindClicks(t *testing.T, s store.Store) {
	now := base()
	a := newSession(t, s, now, touch("everflow", "shared", now))
	b := newSession(t, s, now.Add(time.Second), touch("keitaro", "shared", now.Add(time.Second)))
	old := touch("everflow", "shared", now.Add(-time.Hour))
	old.ExpiresAt = now.Add(-time.Minute)
	newSession(t, s, now.Add(-time.Hour), old)
	got := must[[]store.ClickMatch](t)(s.FindClicks(bg, "shared", now.Add(2*time.Second), 10))
	if len(got) != 2 || got[0].SessionID != b || got[1].SessionID != a || got[0].Touchpoint.Network != "keitaro" {
		t.Fatalf("FindClicks = %+v, want the live ones newest first", got)
	}
	if got := must[[]store.ClickMatch](t)(s.FindClicks(bg, "shared", now.Add(2*time.Second), 1)); len(got) != 1 || got[0].SessionID != b {
		t.Fatalf("FindClicks with limit 1 = %+v", got)
	}
	if got := must[[]store.ClickMatch](t)(s.FindClicks(bg, "SHARED", now, 10)); len(got) != 0 {
		t.Fatalf("click IDs are case-sensitive; got %+v", got)
	}
}

// delivery returns a delivery for network of an order, with its key.
func delivery(network, event, orderID string, now time.Time) record.Delivery {
	tp := touch(network, "click-"+orderID, now)
	o := order.Order{Source: "webhook", Event: event, ID: orderID, Status: order.StatusApproved}
	return record.Delivery{
		ID: record.NewID(now), Network: network, Event: event, OrderID: orderID, Status: order.StatusApproved,
		Key: network + "/" + event + "/" + orderID, MaxAge: 72 * time.Hour,
		Postback:  record.Postback{Network: network, Order: o, Touchpoint: tp, Time: now},
		Request:   record.Request{Method: "GET", URL: "https://n.example/pb?cid=click-" + orderID},
		CreatedAt: now,
	}
}

// recordOrder records an order with deliveries to the networks given and
// returns the result.
func recordOrder(t *testing.T, s store.Store, now time.Time, sessionID, orderID string, networks ...string) store.Recorded {
	t.Helper()
	conv := &record.Conversion{ID: record.NewID(now), SessionID: sessionID, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
		Order: order.Order{Source: "page", Event: "purchase", ID: orderID, Status: order.StatusApproved, Currency: "EUR",
			Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true}}
	var ds []record.Delivery
	for _, n := range networks {
		conv.Credits = append(conv.Credits, record.Credit{Network: n, Touchpoint: touch(n, "click-"+orderID, now), Reason: "test"})
		ds = append(ds, delivery(n, "purchase", orderID, now))
	}
	res, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/" + orderID, Deliveries: ds,
		DedupUntil: now.Add(400 * 24 * time.Hour), Now: now})
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	return res
}

func testRecordQueuesAndDedups(t *testing.T, s store.Store) {
	now := base()
	res := recordOrder(t, s, now, "", "1001", "everflow", "meta")
	if len(res.Queued) != 2 || len(res.Duplicates) != 0 || res.Conversion == nil || len(res.Conversion.Deliveries) != 2 {
		t.Fatalf("first recording: %+v", res)
	}
	d := must[*record.Delivery](t)(s.Delivery(bg, res.Queued[0], now))
	if d.State != record.StateQueued || d.ConversionID != res.Conversion.ID || !d.NextAttempt.Equal(now) || !d.QueuedAt.Equal(now) {
		t.Fatalf("queued delivery %+v", d)
	}
	if d.Postback.Touchpoint.ClickID != "click-1001" || d.Request.URL == "" {
		t.Fatalf("delivery lost its postback or request: %+v", d)
	}
	c := must[*record.Conversion](t)(s.Conversion(bg, res.Conversion.ID, now))
	if c.Order.Amount.String() != "49.90" || c.Order.Currency != "EUR" || len(c.Credits) != 2 {
		t.Fatalf("conversion read back as %+v", c)
	}
	// The same order again (a reloaded page, a retried webhook): nothing new.
	again := recordOrder(t, s, now.Add(time.Second), "", "1001", "everflow", "meta")
	if len(again.Queued) != 0 || len(again.Duplicates) != 2 || again.Conversion != nil {
		t.Fatalf("second recording of one order: %+v", again)
	}
	// A new network for the same order is sent; the other is a duplicate.
	third := recordOrder(t, s, now.Add(2*time.Second), "", "1001", "meta", "tiktok")
	if len(third.Queued) != 1 || len(third.Duplicates) != 1 || third.Conversion == nil ||
		!equal(third.Conversion.Skipped, []string{"meta"}) {
		t.Fatalf("third recording: %+v", third)
	}
}

func testRecordDedupConcurrent(t *testing.T, s store.Store) {
	now := base()
	var queued atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
				Order: order.Order{Source: "webhook", Event: "purchase", ID: "race", Status: order.StatusApproved}}
			res, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/race",
				Deliveries: []record.Delivery{delivery("everflow", "purchase", "race", now)}, DedupUntil: now.Add(time.Hour), Now: now})
			if err != nil {
				errs <- err
				return
			}
			queued.Add(int32(len(res.Queued)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := queued.Load(); n != 1 {
		t.Fatalf("%d deliveries queued by 16 concurrent recordings of one order, want 1", n)
	}
	ds, _ := must[[]record.Delivery](t)(func() ([]record.Delivery, error) {
		ds, _, err := s.Deliveries(bg, store.DeliveryQuery{Network: "everflow"}, now)
		return ds, err
	}()), 0
	if len(ds) != 1 {
		t.Fatalf("%d deliveries stored", len(ds))
	}
}

func testRecordEventKey(t *testing.T, s store.Store) {
	now := base()
	rec := func(orderID string) store.Recorded {
		conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			Order: order.Order{Source: "webhook", Event: "purchase", ID: orderID, Status: order.StatusApproved}}
		res, err := s.Record(bg, store.Recording{EventKey: "stripe/evt_1", EventUntil: now.Add(time.Hour), Conversion: conv,
			ConversionKey: "purchase/" + orderID, Deliveries: []record.Delivery{delivery("everflow", "purchase", orderID, now)},
			DedupUntil: now.Add(time.Hour), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if first := rec("A"); first.SeenEvent || len(first.Queued) != 1 {
		t.Fatalf("first: %+v", first)
	}
	// A retried event writes nothing, even what would be new.
	if second := rec("B"); !second.SeenEvent || len(second.Queued) != 0 || second.Conversion != nil {
		t.Fatalf("retried event: %+v", second)
	}
	if st := must[[]store.NetworkQueue](t)(s.QueueStats(bg, now)); len(st) != 1 || st[0].Queued != 1 {
		t.Fatalf("queue after a retried event: %+v", st)
	}
}

func testRecordConversionKey(t *testing.T, s store.Store) {
	now := base()
	rec := func() store.Recorded {
		conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour), Decision: "no session",
			Order: order.Order{Source: "webhook", Event: "purchase", ID: "uncredited", Status: order.StatusApproved}}
		res, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: "purchase/uncredited", Now: now, DedupUntil: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := rec(); r.Conversion == nil {
		t.Fatal("an uncredited order was not recorded")
	}
	if r := rec(); r.Conversion != nil {
		t.Fatal("an uncredited order was recorded twice")
	}
	cs, _ := listConversions(t, s, store.ConversionQuery{}, now)
	if len(cs) != 1 || cs[0].Decision != "no session" {
		t.Fatalf("conversions %+v", cs)
	}
}

func listConversions(t *testing.T, s store.Store, q store.ConversionQuery, now time.Time) ([]record.Conversion, string) {
	t.Helper()
	cs, next, err := s.Conversions(bg, q, now)
	if err != nil {
		t.Fatal(err)
	}
	return cs, next
}

func entry(orderID, sessionID string, now time.Time, credits ...string) *store.OrderEntry {
	e := &store.OrderEntry{OrderID: orderID, SessionID: sessionID, ExpiresAt: now.Add(400 * 24 * time.Hour),
		Order: order.Order{Source: "webhook", Event: "purchase", ID: orderID, Status: order.StatusApproved}}
	for _, n := range credits {
		e.Credits = append(e.Credits, record.Credit{Network: n, Touchpoint: touch(n, "k", now)})
	}
	return e
}

func testOrderEntryJoin(t *testing.T, s store.Store) {
	now := base()
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"cs_1", "pi_1"}, now)); e.Version != 0 {
		t.Fatalf("an order nobody recorded: %+v", e)
	}
	// A webhook records the order under its ID and an alias.
	res, err := s.Record(bg, store.Recording{OrderKeys: []string{"cs_1", "pi_1"}, Entry: entry("cs_1", "", now), Now: now})
	if err != nil || res.Entry == nil || res.Entry.Version != 1 {
		t.Fatalf("recording an entry: %+v, %v", res.Entry, err)
	}
	// A refund names the alias and finds it.
	e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"pi_1"}, now))
	if e.OrderID != "cs_1" || e.Version != 1 || e.Order.Event != "purchase" {
		t.Fatalf("found by alias: %+v", e)
	}
	// A return page names the order by its ID and links the session: the
	// one entry changes, whichever key finds it.
	link := e
	link.SessionID = "visitor"
	res, err = s.Record(bg, store.Recording{OrderKeys: []string{"cs_1"}, Prior: e.Version, Entry: &link, Now: now})
	if err != nil || res.Entry.Version != 2 {
		t.Fatalf("linking: %+v, %v", res.Entry, err)
	}
	for _, key := range []string{"pi_1", "cs_1"} {
		e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{key}, now))
		if e.SessionID != "visitor" || e.Version != 2 || e.Order.Event != "purchase" {
			t.Fatalf("found by %s after the link: %+v", key, e)
		}
	}
	// A key not seen before joins the entry it is recorded with.
	e = must[store.OrderEntry](t)(s.FindOrder(bg, []string{"sub_1", "pi_1"}, now))
	res, err = s.Record(bg, store.Recording{OrderKeys: []string{"sub_1", "pi_1"}, Prior: e.Version, Entry: &e, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"sub_1"}, now)); e.OrderID != "cs_1" || e.Version != 3 {
		t.Fatalf("found by a new alias: %+v", e)
	}
}

func testOrderEntryConflict(t *testing.T, s store.Store) {
	now := base()
	if _, err := s.Record(bg, store.Recording{OrderKeys: []string{"o1"}, Entry: entry("o1", "", now), Now: now}); err != nil {
		t.Fatal(err)
	}
	// A writer that read no entry (Prior 0) loses against the one written.
	conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Order: order.Order{Source: "page", Event: "purchase", ID: "o1", Status: order.StatusApproved}}
	_, err := s.Record(bg, store.Recording{OrderKeys: []string{"o1"}, Prior: 0, Entry: entry("o1", "sess", now, "everflow"),
		Conversion: conv, ConversionKey: "purchase/o1", Deliveries: []record.Delivery{delivery("everflow", "purchase", "o1", now)},
		DedupUntil: now.Add(time.Hour), Now: now})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale Prior: %v, want ErrConflict", err)
	}
	// Nothing of the failed recording was written.
	if st := must[[]store.NetworkQueue](t)(s.QueueStats(bg, now)); len(st) != 0 {
		t.Fatalf("a conflicting recording queued deliveries: %+v", st)
	}
	if cs, _ := listConversions(t, s, store.ConversionQuery{}, now); len(cs) != 0 {
		t.Fatalf("a conflicting recording stored a conversion: %+v", cs)
	}
	// With the version it read, it succeeds.
	res, err := s.Record(bg, store.Recording{OrderKeys: []string{"o1"}, Prior: 1, Entry: entry("o1", "sess", now, "everflow"),
		Conversion: conv, ConversionKey: "purchase/o1", Deliveries: []record.Delivery{delivery("everflow", "purchase", "o1", now)},
		DedupUntil: now.Add(time.Hour), Now: now})
	if err != nil || len(res.Queued) != 1 || res.Entry.Version != 2 || res.Entry.SessionID != "sess" {
		t.Fatalf("recording with the right Prior: %+v, %v", res, err)
	}
}

func testOrderEntryConcurrentWriters(t *testing.T, s store.Store) {
	now := base()
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				e, err := s.FindOrder(bg, []string{"shared"}, now)
				if err != nil {
					errs <- err
					return
				}
				next := entry("shared", "", now)
				next.Order.Values = map[string]string{"writer": fmt.Sprint(i)}
				_, err = s.Record(bg, store.Recording{OrderKeys: []string{"shared"}, Prior: e.Version, Entry: next, Now: now})
				if errors.Is(err, store.ErrConflict) && attempt < 1000 {
					continue
				}
				if err != nil {
					errs <- err
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"shared"}, now)); e.Version != writers {
		t.Fatalf("version %d after %d read-modify-write writers, want %d: a write was lost", e.Version, writers, writers)
	}
}

func testOrderEntryFirstSessionKept(t *testing.T, s store.Store) {
	now := base()
	res, err := s.Record(bg, store.Recording{OrderKeys: []string{"o2"}, Entry: &store.OrderEntry{OrderID: "o2", SessionID: "first", ExpiresAt: now.Add(time.Hour)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Record(bg, store.Recording{OrderKeys: []string{"o2"}, Prior: res.Entry.Version, Entry: entry("o2", "second", now, "everflow"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.SessionID != "first" || len(res.Entry.Credits) != 1 || res.Entry.Order.Source != "webhook" {
		t.Fatalf("entry after a second session tried to take the order: %+v", res.Entry)
	}
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"o2"}, now)); e.SessionID != "first" {
		t.Fatalf("stored entry's session %q", e.SessionID)
	}
}

func testConversionListing(t *testing.T, s store.Store) {
	now := base()
	var ids []string
	for i := range 7 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		conv := &record.Conversion{ID: record.NewID(at), SessionID: fmt.Sprintf("s%d", i%2), CreatedAt: at, ExpiresAt: at.Add(time.Hour),
			Credits: []record.Credit{{Network: []string{"everflow", "meta"}[i%2]}},
			Order:   order.Order{Source: []string{"page", "webhook:stripe"}[i%2], Event: []string{"purchase", "lead", "purchase"}[i%3], ID: fmt.Sprint(i), Status: order.StatusApproved}}
		if i == 6 {
			conv.Order.Status = order.StatusRefunded
		}
		if _, err := s.Record(bg, store.Recording{Conversion: conv, ConversionKey: fmt.Sprintf("k%d", i), Now: at}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, conv.ID)
	}
	// Paging: newest first, every conversion once.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		cs, next := listConversions(t, s, store.ConversionQuery{Limit: 3, Cursor: cursor}, now.Add(time.Second))
		if len(cs) > 3 {
			t.Fatalf("page of %d with limit 3", len(cs))
		}
		for _, c := range cs {
			seen = append(seen, c.ID)
		}
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	want := append([]string(nil), ids...)
	sort.Sort(sort.Reverse(sort.StringSlice(want)))
	if !equal(seen, want) {
		t.Fatalf("paged %v, want %v", seen, want)
	}
	count := func(q store.ConversionQuery) int {
		cs, _ := listConversions(t, s, q, now.Add(time.Second))
		return len(cs)
	}
	for _, tc := range []struct {
		name string
		q    store.ConversionQuery
		want int
	}{
		{"network", store.ConversionQuery{Network: "meta"}, 3},
		{"event", store.ConversionQuery{Event: "lead"}, 2},
		{"status", store.ConversionQuery{Status: order.StatusRefunded}, 1},
		{"source", store.ConversionQuery{Source: "webhook"}, 3},
		{"source with provider", store.ConversionQuery{Source: "webhook:stripe"}, 3},
		{"source of another provider", store.ConversionQuery{Source: "webhook:shopify"}, 0},
		{"session", store.ConversionQuery{SessionID: "s0"}, 4},
		{"since", store.ConversionQuery{Since: now.Add(5 * time.Millisecond)}, 2},
		{"until", store.ConversionQuery{Until: now.Add(2 * time.Millisecond)}, 2},
		{"combined", store.ConversionQuery{Network: "everflow", Event: "purchase"}, 3},
	} {
		if got := count(tc.q); got != tc.want {
			t.Errorf("filter %s: %d conversions, want %d", tc.name, got, tc.want)
		}
	}
	if n := must[int](t)(s.SessionConversions(bg, "s1", now.Add(2*time.Millisecond), now.Add(time.Second))); n != 2 {
		t.Errorf("SessionConversions = %d, want 2", n)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	now := base()
	later := now.Add(2 * time.Hour)
	conv := &record.Conversion{ID: record.NewID(now), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Order: order.Order{Source: "page", Event: "purchase", ID: "exp", Status: order.StatusApproved}}
	e := entry("exp", "", now)
	e.ExpiresAt = now.Add(time.Hour)
	res, err := s.Record(bg, store.Recording{EventKey: "p/e1", EventUntil: now.Add(time.Hour), OrderKeys: []string{"exp"}, Entry: e,
		Conversion: conv, ConversionKey: "purchase/exp", Deliveries: []record.Delivery{delivery("everflow", "purchase", "exp", now)},
		DedupUntil: now.Add(time.Hour), Now: now})
	if err != nil || len(res.Queued) != 1 {
		t.Fatal(res, err)
	}
	if _, err := s.Conversion(bg, conv.ID, later); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired conversion: %v", err)
	}
	if cs, _ := listConversions(t, s, store.ConversionQuery{}, later); len(cs) != 0 {
		t.Errorf("expired conversion listed: %+v", cs)
	}
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"exp"}, later)); e.Version != 0 {
		t.Errorf("expired order entry found: %+v", e)
	}
	// The markers expired too: the same event and keys record anew.
	conv2 := *conv
	conv2.ID = record.NewID(later)
	conv2.ExpiresAt = later.Add(time.Hour)
	d := delivery("everflow", "purchase", "exp", later)
	res, err = s.Record(bg, store.Recording{EventKey: "p/e1", EventUntil: later.Add(time.Hour), OrderKeys: []string{"exp"}, Entry: entry("exp", "", later),
		Conversion: &conv2, ConversionKey: "purchase/exp", Deliveries: []record.Delivery{d}, DedupUntil: later.Add(time.Hour), Now: later})
	if err != nil || res.SeenEvent || len(res.Queued) != 1 {
		t.Fatalf("recording after the markers expired: %+v, %v", res, err)
	}
	// A delivered delivery goes when its retention ends.
	got, _ := must[[]record.Delivery](t)(func() ([]record.Delivery, error) {
		ds, _, err := s.Claim(bg, "everflow", "w1", 10, later, later.Add(time.Minute))
		return ds, err
	}()), 0
	if len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	if err := s.Complete(bg, got[0].ID, "w1", record.Attempt{At: later, Status: 200, Outcome: "delivered"}, got[0].Request, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delivery(bg, got[0].ID, later.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a delivered delivery past its retention: %v", err)
	}
	if _, err := s.Delivery(bg, got[1].ID, later.Add(2*time.Hour)); err != nil {
		t.Errorf("a running delivery must not expire: %v", err)
	}
}

// queue records n deliveries to network, due at now, and returns their IDs
// in the order recorded.
func queue(t *testing.T, s store.Store, network string, n int, now time.Time) []string {
	t.Helper()
	var ids []string
	for i := range n {
		d := delivery(network, "purchase", fmt.Sprintf("%s-%d-%d", network, now.UnixNano(), i), now)
		res, err := s.Record(bg, store.Recording{Deliveries: []record.Delivery{d}, DedupUntil: now.Add(time.Hour), Now: now})
		if err != nil || len(res.Queued) != 1 {
			t.Fatalf("queueing: %+v, %v", res, err)
		}
		ids = append(ids, res.Queued[0])
	}
	return ids
}

func claim(t *testing.T, s store.Store, network, owner string, limit int, now time.Time) ([]record.Delivery, time.Time) {
	t.Helper()
	ds, next, err := s.Claim(bg, network, owner, limit, now, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return ds, next
}

func testClaimDueOnly(t *testing.T, s store.Store) {
	now := base()
	early := queue(t, s, "everflow", 3, now)
	later := queue(t, s, "everflow", 2, now.Add(time.Minute))
	// Deliveries due at the same time are claimed in ID order.
	sort.Strings(early)
	sort.Strings(later)
	queue(t, s, "meta", 2, now)
	got, next := claim(t, s, "everflow", "w1", 2, now)
	if len(got) != 2 || got[0].ID != early[0] || got[1].ID != early[1] {
		t.Fatalf("claimed %v, want the two earliest due of everflow", got)
	}
	for _, d := range got {
		if d.State != record.StateRunning || d.Owner != "w1" || !d.LeaseUntil.Equal(now.Add(time.Minute)) || d.Network != "everflow" {
			t.Fatalf("claimed delivery %+v", d)
		}
	}
	if !next.Equal(now) {
		t.Fatalf("next due %v, want %v (one due delivery left)", next, now)
	}
	got, next = claim(t, s, "everflow", "w1", 10, now)
	if len(got) != 1 || got[0].ID != early[2] || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("second claim %v, next %v", got, next)
	}
	if got, _ := claim(t, s, "everflow", "w1", 10, now); len(got) != 0 {
		t.Fatalf("claimed deliveries not yet due: %v", got)
	}
	got, next = claim(t, s, "everflow", "w1", 10, now.Add(time.Minute))
	if len(got) != 2 || got[0].ID != later[0] || !next.IsZero() {
		t.Fatalf("claim when the later ones are due: %v, next %v", got, next)
	}
	if got, _ := claim(t, s, "nobody", "w1", 10, now); len(got) != 0 {
		t.Fatal("claimed deliveries of another network")
	}
}

func testClaimNeverTwice(t *testing.T, s store.Store) {
	now := base()
	const n = 200
	queue(t, s, "everflow", n, now)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				ds, _, err := s.Claim(bg, "everflow", owner, 7, now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := seen[d.ID]; dup {
						t.Errorf("delivery %s claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d deliveries claimed", len(seen), n)
	}
}

func testOwnerChecked(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "everflow", 1, now)
	got, _ := claim(t, s, "everflow", "w1", 1, now)
	d := got[0]
	at := record.Attempt{At: now, Status: 200, Outcome: "delivered", LatencyMS: 12.5, Snippet: "ok"}
	if err := s.Complete(bg, d.ID, "w2", at, d.Request, now.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Complete by another owner: %v, want ErrLeaseLost", err)
	}
	if err := s.Retry(bg, d.ID, "w2", at, d.Request, now); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Retry by another owner: %v", err)
	}
	if err := s.Bury(bg, d.ID, "w2", &at, d.Request, "x", now.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Bury by another owner: %v", err)
	}
	if err := s.Release(bg, d.ID, "w2", now); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Release by another owner: %v", err)
	}
	sent := d.Request
	sent.URL += "&masked=REDACTED"
	if err := s.Complete(bg, d.ID, "w1", at, sent, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stored := must[*record.Delivery](t)(s.Delivery(bg, d.ID, now))
	if stored.State != record.StateDelivered || stored.Tries != 1 || len(stored.Attempts) != 1 || stored.Attempts[0].Snippet != "ok" ||
		stored.Attempts[0].LatencyMS != 12.5 || stored.Request.URL != sent.URL || stored.Owner != "" || !stored.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("delivered delivery %+v", stored)
	}
	// A settled delivery cannot be settled again, by anyone.
	if err := s.Complete(bg, d.ID, "w1", at, sent, now.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Complete of a delivered delivery: %v, want ErrLeaseLost", err)
	}
	if got, _ := claim(t, s, "everflow", "w3", 10, now.Add(time.Hour)); len(got) != 0 {
		t.Fatal("a delivered delivery was claimed again")
	}
}

func testRetryAndBury(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "everflow", 2, now)
	got, _ := claim(t, s, "everflow", "w1", 2, now)
	fail := record.Attempt{At: now, Status: 503, Outcome: "retry", Error: "service unavailable"}
	if err := s.Retry(bg, got[0].ID, "w1", fail, got[0].Request, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	d := must[*record.Delivery](t)(s.Delivery(bg, got[0].ID, now))
	if d.State != record.StateRetrying || d.Tries != 1 || !d.NextAttempt.Equal(now.Add(30*time.Second)) || d.Owner != "" {
		t.Fatalf("retrying delivery %+v", d)
	}
	if again, _ := claim(t, s, "everflow", "w2", 10, now.Add(29*time.Second)); len(again) != 0 {
		t.Fatal("claimed before its retry time")
	}
	again, _ := claim(t, s, "everflow", "w2", 10, now.Add(30*time.Second))
	if len(again) != 1 || again[0].ID != got[0].ID || again[0].Tries != 1 {
		t.Fatalf("claim at the retry time: %+v", again)
	}
	if err := s.Bury(bg, got[1].ID, "w1", nil, got[1].Request, "network no longer configured", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d = must[*record.Delivery](t)(s.Delivery(bg, got[1].ID, now))
	if d.State != record.StateDead || d.Reason != "network no longer configured" || d.Tries != 0 {
		t.Fatalf("buried delivery %+v", d)
	}
	for range record.MaxAttemptsKept + 5 {
		if err := s.Retry(bg, again[0].ID, "w2", fail, again[0].Request, now.Add(31*time.Second)); err != nil {
			t.Fatal(err)
		}
		again, _ = claim(t, s, "everflow", "w2", 10, now.Add(time.Hour))
	}
	d = must[*record.Delivery](t)(s.Delivery(bg, got[0].ID, now))
	if d.Tries != record.MaxAttemptsKept+6 || len(d.Attempts) != record.MaxAttemptsKept {
		t.Fatalf("tries %d, attempts kept %d", d.Tries, len(d.Attempts))
	}
}

func testReleaseCountsNoTry(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "everflow", 1, now)
	got, _ := claim(t, s, "everflow", "w1", 1, now)
	if err := s.Release(bg, got[0].ID, "w1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d := must[*record.Delivery](t)(s.Delivery(bg, got[0].ID, now))
	if d.State != record.StateQueued || d.Tries != 0 || !d.NextAttempt.Equal(now.Add(time.Minute)) || d.Owner != "" {
		t.Fatalf("released delivery %+v", d)
	}
	if again, _ := claim(t, s, "everflow", "w2", 1, now.Add(time.Minute)); len(again) != 1 {
		t.Fatal("a released delivery was not claimable when due")
	}
}

func testRescueAfterLease(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "everflow", 3, now)
	got, _ := claim(t, s, "everflow", "w1", 3, now) // leased until now+1m
	if n := must[int](t)(s.Rescue(bg, now.Add(30*time.Second))); n != 0 {
		t.Fatalf("rescued %d deliveries whose lease runs", n)
	}
	at := record.Attempt{At: now, Status: 200, Outcome: "delivered"}
	if err := s.Complete(bg, got[0].ID, "w1", at, got[0].Request, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	after := now.Add(2 * time.Minute)
	if n := must[int](t)(s.Rescue(bg, after)); n != 2 {
		t.Fatalf("rescued %d, want the 2 still running", n)
	}
	// The old owner lost them; a new owner gets them, the delivered one never.
	if err := s.Complete(bg, got[1].ID, "w1", at, got[1].Request, after.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Complete after rescue: %v, want ErrLeaseLost", err)
	}
	again, _ := claim(t, s, "everflow", "w2", 10, after)
	if len(again) != 2 {
		t.Fatalf("claimed %d after rescue, want 2", len(again))
	}
	for _, d := range again {
		if d.ID == got[0].ID {
			t.Fatal("a delivered delivery was rescued")
		}
	}
}

func testReplay(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "everflow", 3, now)
	got, _ := claim(t, s, "everflow", "w1", 3, now)
	fail := record.Attempt{At: now, Status: 400, Outcome: "rejected"}
	for _, d := range got[:2] {
		if err := s.Bury(bg, d.ID, "w1", &fail, d.Request, "rejected by the network (status 400)", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Replay(bg, got[2].ID, now); !errors.Is(err, store.ErrState) {
		t.Fatalf("Replay of a running delivery: %v, want ErrState", err)
	}
	later := now.Add(time.Minute)
	d := must[*record.Delivery](t)(s.Replay(bg, got[0].ID, later))
	if d.State != record.StateQueued || !d.QueuedAt.Equal(later) || !d.NextAttempt.Equal(later) || len(d.Attempts) != 1 || d.Tries != 1 {
		t.Fatalf("replayed delivery %+v", d)
	}
	if _, err := s.Replay(bg, got[0].ID, later); !errors.Is(err, store.ErrState) {
		t.Fatalf("Replay of a queued delivery: %v, want ErrState", err)
	}
	if _, err := s.Replay(bg, "nope", later); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replay of an unknown delivery: %v", err)
	}
	if n := must[int](t)(s.ReplayDead(bg, "everflow", later)); n != 1 {
		t.Fatalf("ReplayDead = %d, want 1", n)
	}
	if again, _ := claim(t, s, "everflow", "w2", 10, later); len(again) != 2 {
		t.Fatalf("claimed %d replayed deliveries, want 2", len(again))
	}
}

func listDeliveries(t *testing.T, s store.Store, q store.DeliveryQuery, now time.Time) ([]record.Delivery, string) {
	t.Helper()
	ds, next, err := s.Deliveries(bg, q, now)
	if err != nil {
		t.Fatal(err)
	}
	return ds, next
}

func testDeliveryListing(t *testing.T, s store.Store) {
	now := base()
	a := queue(t, s, "everflow", 4, now)
	b := queue(t, s, "meta", 3, now.Add(time.Millisecond))
	got, _ := claim(t, s, "everflow", "w1", 2, now)
	fail := record.Attempt{At: now, Status: 404, Outcome: "rejected"}
	if err := s.Bury(bg, got[0].ID, "w1", &fail, got[0].Request, "rejected", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var seen []string
	cursor := ""
	for {
		ds, next := listDeliveries(t, s, store.DeliveryQuery{Limit: 2, Cursor: cursor}, now)
		for _, d := range ds {
			seen = append(seen, d.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := append(append([]string(nil), a...), b...)
	sort.Sort(sort.Reverse(sort.StringSlice(want)))
	if !equal(seen, want) {
		t.Fatalf("paged %v, want %v", seen, want)
	}
	for _, tc := range []struct {
		q    store.DeliveryQuery
		want int
	}{
		{store.DeliveryQuery{Network: "meta"}, 3},
		{store.DeliveryQuery{State: record.StateDead}, 1},
		{store.DeliveryQuery{State: record.StateRunning}, 1},
		{store.DeliveryQuery{State: record.StateQueued, Network: "everflow"}, 2},
	} {
		if ds, _ := listDeliveries(t, s, tc.q, now); len(ds) != tc.want {
			t.Errorf("filter %+v: %d deliveries, want %d", tc.q, len(ds), tc.want)
		}
	}
}

func testQueueStats(t *testing.T, s store.Store) {
	now := base()
	queue(t, s, "meta", 2, now.Add(time.Second))
	queue(t, s, "everflow", 3, now)
	got, _ := claim(t, s, "everflow", "w1", 2, now)
	if err := s.Retry(bg, got[0].ID, "w1", record.Attempt{At: now, Status: 500}, got[0].Request, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st := must[[]store.NetworkQueue](t)(s.QueueStats(bg, now))
	if len(st) != 2 || st[0].Network != "everflow" || st[1].Network != "meta" {
		t.Fatalf("stats %+v", st)
	}
	e := st[0]
	if e.Queued != 1 || e.Retrying != 1 || e.Running != 1 || e.Dead != 0 || !e.OldestWaiting.Equal(now) || !e.NextDue.Equal(now) {
		t.Fatalf("everflow %+v", e)
	}
	if m := st[1]; m.Queued != 2 || !m.OldestWaiting.Equal(now.Add(time.Second)) || !m.NextDue.Equal(now.Add(time.Second)) {
		t.Fatalf("meta %+v", m)
	}
}

func testWebhookLog(t *testing.T, s store.Store) {
	now := base()
	var ids []string
	for i, res := range []string{record.WebhookRecorded, record.WebhookRejected, record.WebhookKept, record.WebhookRecorded} {
		at := now.Add(time.Duration(i) * time.Millisecond)
		e := record.WebhookEntry{ID: record.NewID(at), Provider: []string{"stripe", "shopify"}[i%2], Path: "/hook", ReceivedAt: at,
			Result: res, Reason: "r", ExpiresAt: at.Add(time.Hour)}
		if res == record.WebhookKept {
			e.Payload = `{"broken":`
		}
		if err := s.LogWebhook(bg, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	all, _, err := s.WebhookLog(bg, store.WebhookQuery{}, now)
	if err != nil || len(all) != 4 || all[0].ID != ids[3] {
		t.Fatalf("log %+v, %v", all, err)
	}
	if got, _, _ := s.WebhookLog(bg, store.WebhookQuery{Provider: "stripe", Result: record.WebhookRecorded}, now); len(got) != 1 {
		t.Fatalf("filtered %+v", got)
	}
	page, next, _ := s.WebhookLog(bg, store.WebhookQuery{Limit: 3}, now)
	rest, end, _ := s.WebhookLog(bg, store.WebhookQuery{Limit: 3, Cursor: next}, now)
	if len(page) != 3 || len(rest) != 1 || end != "" || rest[0].ID != ids[0] {
		t.Fatalf("paging %d + %d (next %q, end %q)", len(page), len(rest), next, end)
	}
	kept := must[*record.WebhookEntry](t)(s.Webhook(bg, ids[2], now))
	if kept.Payload != `{"broken":` || kept.Result != record.WebhookKept {
		t.Fatalf("kept entry %+v", kept)
	}
	if _, err := s.Webhook(bg, ids[2], now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired entry: %v", err)
	}
}

func testMetaGetOrCreate(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	vals := make([]string, 8)
	for i := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.MetaGetOrCreate(bg, "cookie_key", func() []byte { return []byte(fmt.Sprintf("value-%d", i)) })
			if err != nil {
				t.Error(err)
			}
			vals[i] = string(v)
		}()
	}
	wg.Wait()
	for _, v := range vals {
		if v != vals[0] || v == "" {
			t.Fatalf("concurrent callers got different values: %v", vals)
		}
	}
	v := must[[]byte](t)(s.MetaGetOrCreate(bg, "cookie_key", func() []byte { return []byte("other") }))
	if string(v) != vals[0] {
		t.Fatalf("stored value changed to %q", v)
	}
}

func testStats(t *testing.T, s store.Store) {
	now := base()
	hour := now.UTC().Truncate(time.Hour)
	add := []store.Stat{
		{Hour: hour.Add(10 * time.Minute), Metric: store.StatClicks, Network: "everflow", Count: 2},
		{Hour: hour, Metric: store.StatClicks, Network: "everflow", Count: 3},
		{Hour: hour, Metric: store.StatConversions, Network: "everflow", Event: "purchase", Currency: "EUR", Result: "credited", Count: 1, Sum: 4990},
		{Hour: hour.Add(-time.Hour), Metric: store.StatClicks, Network: "everflow", Count: 7},
		{Hour: hour.Add(-48 * time.Hour), Metric: store.StatClicks, Network: "everflow", Count: 100},
	}
	if err := s.AddStats(bg, add); err != nil {
		t.Fatal(err)
	}
	if err := s.AddStats(bg, []store.Stat{{Hour: hour, Metric: store.StatConversions, Network: "everflow", Event: "purchase", Currency: "EUR", Result: "credited", Count: 1, Sum: 10}}); err != nil {
		t.Fatal(err)
	}
	got := must[[]store.Stat](t)(s.Stats(bg, hour.Add(-time.Hour), hour.Add(time.Hour)))
	sum := map[string][2]int64{}
	for _, st := range got {
		k := st.Hour.UTC().Format(time.RFC3339) + " " + st.Metric + " " + st.Network + " " + st.Event + " " + st.Currency + " " + st.Result
		v := sum[k]
		sum[k] = [2]int64{v[0] + st.Count, v[1] + st.Sum}
	}
	h := hour.Format(time.RFC3339)
	want := map[string][2]int64{
		h + " clicks everflow   ": {5, 0},
		hour.Add(-time.Hour).Format(time.RFC3339) + " clicks everflow   ": {7, 0},
		h + " conversions everflow purchase EUR credited":                 {2, 5000},
	}
	if fmt.Sprint(sum) != fmt.Sprint(want) {
		t.Fatalf("stats %v, want %v", sum, want)
	}
}

func testStatsConcurrent(t *testing.T, s store.Store) {
	hour := base().UTC().Truncate(time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := s.AddStats(bg, []store.Stat{{Hour: hour, Metric: store.StatSessions, Count: 1}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := must[[]store.Stat](t)(s.Stats(bg, hour, hour.Add(time.Hour)))
	if len(got) != 1 || got[0].Count != 80 {
		t.Fatalf("80 concurrent additions summed to %+v", got)
	}
}

func testEraseSession(t *testing.T, s store.Store) {
	now := base()
	id := newSession(t, s, now, touch("everflow", "erase-me", now))
	other := newSession(t, s, now, touch("everflow", "keep-me", now))
	res := recordOrder(t, s, now, id, "E1", "everflow", "meta")
	if _, err := s.Record(bg, store.Recording{OrderKeys: []string{"E1"}, Entry: entry("E1", id, now, "everflow", "meta"), Now: now}); err != nil {
		t.Fatal(err)
	}
	kept := recordOrder(t, s, now, other, "K1", "everflow")
	got, _ := claim(t, s, "everflow", "w1", 10, now)
	for _, d := range got {
		at := record.Attempt{At: now, Status: 200, Outcome: "delivered", Snippet: "echo " + d.Postback.Touchpoint.ClickID}
		if err := s.Complete(bg, d.ID, "w1", at, d.Request, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if ok := must[bool](t)(s.EraseSession(bg, id, now, now.Add(time.Hour))); !ok {
		t.Fatal("EraseSession reported nothing stored")
	}
	if _, err := s.Session(bg, id, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("erased session still read: %v", err)
	}
	if m := must[[]store.ClickMatch](t)(s.FindClicks(bg, "erase-me", now, 10)); len(m) != 0 {
		t.Fatalf("erased click still found: %+v", m)
	}
	c := must[*record.Conversion](t)(s.Conversion(bg, res.Conversion.ID, now))
	for _, cr := range c.Credits {
		tp := cr.Touchpoint
		if tp.ClickID != record.Erased || tp.ClientIP != "" || tp.UserAgent != "" || tp.Referrer != "" || tp.LandingURL != "" || tp.Subs != nil {
			t.Fatalf("conversion credit not scrubbed: %+v", tp)
		}
	}
	if cs, _ := listConversions(t, s, store.ConversionQuery{}, now); len(cs) != 2 {
		t.Fatalf("conversions after erasure: %d", len(cs))
	}
	if cs, _ := listConversions(t, s, store.ConversionQuery{SessionID: id}, now); len(cs) != 0 {
		t.Fatalf("conversions still listed under the erased session: %+v", cs)
	}
	if e := must[store.OrderEntry](t)(s.FindOrder(bg, []string{"E1"}, now)); len(e.Credits) != 2 || e.Credits[0].Touchpoint.ClickID != record.Erased || e.SessionID != record.Erased {
		t.Fatalf("order entry not scrubbed: %+v", e)
	}
	for _, did := range res.Queued {
		d := must[*record.Delivery](t)(s.Delivery(bg, did, now))
		if d.Postback.Touchpoint.ClickID != record.Erased || d.Request.URL != record.Erased {
			t.Fatalf("delivery not scrubbed: %+v", d)
		}
		for _, a := range d.Attempts {
			if a.Snippet != "" {
				t.Fatalf("attempt snippet kept: %+v", a)
			}
		}
		if d.Network == "meta" && (d.State != record.StateDead || d.Reason != store.ReasonErased) {
			t.Fatalf("waiting delivery of an erased session not cancelled: %+v", d)
		}
		if d.Network == "everflow" && d.State != record.StateDelivered {
			t.Fatalf("delivered delivery changed state: %+v", d)
		}
	}
	// Another visitor's records are untouched.
	if m := must[[]store.ClickMatch](t)(s.FindClicks(bg, "keep-me", now, 10)); len(m) != 1 {
		t.Fatal("erasure removed another session's click")
	}
	k := must[*record.Delivery](t)(s.Delivery(bg, kept.Queued[0], now))
	if k.Postback.Touchpoint.ClickID != "click-K1" {
		t.Fatalf("erasure scrubbed another session's delivery: %+v", k)
	}
	if ok := must[bool](t)(s.EraseSession(bg, id, now, now.Add(time.Hour))); ok {
		t.Fatal("erasing twice reported something stored")
	}
}

func testStorageFault(t *testing.T, s store.Store, brk func(*testing.T, store.Store) func()) {
	now := base()
	id := newSession(t, s, now, touch("everflow", "before", now))
	restore := brk(t, s)
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s while storage is broken: %v, want an error wrapping ErrUnavailable", what, err)
		}
	}
	unavailable("Ping", s.Ping(bg))
	unavailable("CreateSession", s.CreateSession(bg, &record.Session{ID: "during", CreatedAt: now, Touchpoints: []record.Touchpoint{touch("meta", "during", now)}}))
	unavailable("AddTouchpoints", s.AddTouchpoints(bg, id, []record.Touchpoint{touch("meta", "during", now)}, "", 20, now))
	_, err := s.Record(bg, store.Recording{Deliveries: []record.Delivery{delivery("everflow", "purchase", "during", now)}, DedupUntil: now.Add(time.Hour), Now: now})
	unavailable("Record", err)
	restore()
	waitFor(t, func() error { return s.Ping(bg) })
	// Nothing half-written, and everything works again.
	if _, err := s.Session(bg, "during", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a session written while storage was broken: %v", err)
	}
	sess := must[*record.Session](t)(s.Session(bg, id, now))
	if len(sess.Touchpoints) != 1 {
		t.Errorf("touchpoints after the fault: %v", clickIDs(sess.Touchpoints))
	}
	if res := recordOrder(t, s, now, "", "after", "everflow"); len(res.Queued) != 1 {
		t.Errorf("recording after the fault: %+v", res)
	}
}

// waitFor polls cond until it returns nil, for up to 30 seconds.
func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
