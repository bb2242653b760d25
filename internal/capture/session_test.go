package capture

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/codec"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// openStore opens a real store, on disk in a temporary directory or in
// memory, closed when the test ends.
func openStore(t *testing.T, inMemory bool) *store.Badger {
	t.Helper()
	o := store.Options{InMemory: inMemory}
	if !inMemory {
		o.Dir = t.TempDir()
	}
	st, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSessionEncodingRoundTrip(t *testing.T) {
	at := time.Unix(0, 1771000000123456789)
	tests := []struct {
		name string
		s    *Session
	}{
		{"empty", &Session{ID: "s0", CreatedAt: at}},
		{"full", &Session{ID: "s1", CreatedAt: at, GAClientID: "1197596843.1673515099", Touchpoints: []Touchpoint{
			{Network: "impact", Param: "irclickid", ClickID: "Qx-1_z", CapturedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour),
				LandingURL: "https://shop.example/?irclickid=Qx-1_z&utm_source=partner", Referrer: "https://partner.example/",
				ClientIP: "203.0.113.0", UserAgent: "Mozilla/5.0", Subs: map[string]string{"utm_source": "partner", "sub1": "spring"}},
			{Network: "meta", Param: "fbclid", ClickID: "IwAR", CapturedAt: at.Add(time.Second), ExpiresAt: at.Add(time.Hour)},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := encodeSession(tt.s)
			back, err := decodeSession(tt.s.ID, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.s) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, tt.s)
			}
		})
	}
}

// Sessions stored as JSON before the binary form existed are still read.
func TestSessionJSONFormIsRead(t *testing.T) {
	v := []byte(`{"c":1771000000000000000,"t":[{"n":"impact","p":"irclickid","k":"abc","a":1771000000000000000,` +
		`"x":1773592000000000000,"l":"https://shop.example/?irclickid=abc","i":"203.0.113.0","u":"UA","s":{"sub1":"spring"}}],"g":"1.2"}`)
	s, err := decodeSession("old", v)
	if err != nil {
		t.Fatal(err)
	}
	want := &Session{ID: "old", CreatedAt: time.Unix(0, 1771000000000000000), GAClientID: "1.2", Touchpoints: []Touchpoint{{
		Network: "impact", Param: "irclickid", ClickID: "abc", CapturedAt: time.Unix(0, 1771000000000000000),
		ExpiresAt: time.Unix(0, 1773592000000000000), LandingURL: "https://shop.example/?irclickid=abc",
		ClientIP: "203.0.113.0", UserAgent: "UA", Subs: map[string]string{"sub1": "spring"}}}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
}

// A damaged record is an error, never a panic or a session with garbage.
func TestCorruptSessionIsAnError(t *testing.T) {
	v := encodeSession(&Session{CreatedAt: time.Now(), Touchpoints: []Touchpoint{{Network: "n", ClickID: "c", Subs: map[string]string{"a": "b"}}}})
	for n := range len(v) {
		if _, err := decodeSession("x", v[:n]); !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("record cut at %d of %d bytes: err = %v, want ErrCorrupt", n, len(v), err)
		}
	}
	if _, err := decodeSession("x", append(v, 0)); !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	if _, err := decodeSession("x", []byte(`{"c":`)); err == nil {
		t.Fatal("broken JSON session decoded")
	}
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(encodeSession(&Session{CreatedAt: time.Unix(0, 1), Touchpoints: []Touchpoint{{Network: "n", ClickID: "c", Subs: map[string]string{"a": "b"}}}}))
	f.Add([]byte(`{"c":1,"t":[{"n":"a","k":"b"}]}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := decodeSession("f", v)
		if err != nil {
			return
		}
		back, err := decodeSession("f", encodeSession(s))
		if err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if len(back.Touchpoints) != len(s.Touchpoints) || back.GAClientID != s.GAClientID {
			t.Fatalf("re-encoded session differs: %+v vs %+v", back, s)
		}
	})
}

// Sessions created at the same moment share commits, and each is readable
// as soon as its Create returns.
func TestConcurrentCreatesAreEachReadable(t *testing.T) {
	st := openStore(t, false)
	ss := &Sessions{Store: st, TTL: time.Hour}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			tp := Touchpoint{Network: "impact", ClickID: fmt.Sprintf("c%d", i), CapturedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			id, err := ss.Create([]Touchpoint{tp}, "")
			if err != nil {
				errs <- err
				return
			}
			s, err := ss.Get(id)
			if err != nil {
				errs <- fmt.Errorf("%s right after Create: %w", id, err)
				return
			}
			if s.Touchpoints[0].ClickID != tp.ClickID {
				errs <- fmt.Errorf("%s holds click %q, want %q", id, s.Touchpoints[0].ClickID, tp.ClickID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Sessions written to the main store before sessions had a store of their
// own are still found, move to the new store with their next click, and an
// erasure removes them from both.
func TestSessionsFromTheEarlierStore(t *testing.T) {
	main, own := openStore(t, false), openStore(t, false)
	at := time.Now()
	first := Touchpoint{Network: "impact", ClickID: "c1", CapturedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := (&Sessions{Store: main, TTL: time.Hour}).Add("s1", []Touchpoint{first}, "GA1.1"); err != nil {
		t.Fatal(err)
	}
	ss := &Sessions{Store: own, Earlier: main, TTL: time.Hour}

	s, err := ss.Get("s1")
	if err != nil {
		t.Fatalf("session in the earlier store: %v", err)
	}
	if len(s.Touchpoints) != 1 || s.Touchpoints[0].ClickID != "c1" || s.GAClientID != "GA1.1" {
		t.Fatalf("earlier session read as %+v", s)
	}

	second := Touchpoint{Network: "awin", ClickID: "c2", CapturedAt: at.Add(time.Second), ExpiresAt: at.Add(time.Hour)}
	if err := ss.Add("s1", []Touchpoint{second}, ""); err != nil {
		t.Fatal(err)
	}
	moved, err := (&Sessions{Store: own}).Get("s1")
	if err != nil {
		t.Fatalf("session not in its own store after a click: %v", err)
	}
	if got := []string{moved.Touchpoints[0].ClickID, moved.Touchpoints[len(moved.Touchpoints)-1].ClickID}; len(moved.Touchpoints) != 2 || got[0] != "c1" || got[1] != "c2" {
		t.Fatalf("moved session has touchpoints %+v, want c1 then c2", moved.Touchpoints)
	}
	if moved.GAClientID != "GA1.1" {
		t.Fatalf("moved session lost its GA client ID: %+v", moved)
	}

	found, err := ss.Erase("s1")
	if err != nil || !found {
		t.Fatalf("Erase = %v, %v; want true, nil", found, err)
	}
	for name, st := range map[string]store.Store{"own": own, "earlier": main} {
		if _, err := (&Sessions{Store: st}).Get("s1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after Erase the %s store still answers %v", name, err)
		}
	}
	if _, err := ss.Get("s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Erase Get answers %v", err)
	}
}

// Sessions made together share one batch record until a later click gives
// one a record of its own; each reads back as made, and erasing one leaves
// the others.
func TestSessionBatches(t *testing.T) {
	st := openStore(t, false)
	ss := &Sessions{Store: st, TTL: time.Hour}
	at := time.Now()
	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tp := Touchpoint{Network: "impact", ClickID: fmt.Sprintf("c%d", i), CapturedAt: at, ExpiresAt: at.Add(time.Hour)}
			id, err := ss.Create([]Touchpoint{tp}, fmt.Sprintf("GA%d", i))
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	batches := map[string][]int{}
	seen := map[string]bool{}
	for i, id := range ids {
		if len(id) != idLen {
			t.Fatalf("session ID %q is %d characters, want %d", id, len(id), idLen)
		}
		if seen[id[batchIDLen:]] {
			t.Fatalf("session ID %q repeats another session's own part", id)
		}
		seen[id[batchIDLen:]] = true
		batches[id[:batchIDLen]] = append(batches[id[:batchIDLen]], i)
	}
	var shared []int
	for _, members := range batches {
		if len(members) > len(shared) {
			shared = members
		}
	}
	if len(shared) < 2 {
		t.Fatalf("%d concurrent sessions in %d batches: none shared one", n, len(batches))
	}
	check := func(i int, clicks ...string) {
		t.Helper()
		s, err := ss.Get(ids[i])
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		var got []string
		for _, tp := range s.Touchpoints {
			got = append(got, tp.ClickID)
		}
		if s.ID != ids[i] || s.GAClientID != fmt.Sprintf("GA%d", i) || !reflect.DeepEqual(got, clicks) {
			t.Fatalf("session %d read as %s %s %v, want %s GA%d %v", i, s.ID, s.GAClientID, got, ids[i], i, clicks)
		}
	}
	for i := range ids {
		check(i, fmt.Sprintf("c%d", i))
	}

	// A second click: the session gets its own record, with both clicks.
	a, b := shared[0], shared[1]
	later := Touchpoint{Network: "awin", ClickID: "second", CapturedAt: at.Add(time.Second), ExpiresAt: at.Add(time.Hour)}
	if err := ss.Add(ids[a], []Touchpoint{later}, ""); err != nil {
		t.Fatal(err)
	}
	check(a, fmt.Sprintf("c%d", a), "second")

	// Erasing one member of the batch keeps the others.
	for _, i := range []int{a, b} {
		found, err := ss.Erase(ids[i])
		if err != nil || !found {
			t.Fatalf("Erase(%d) = %v, %v", i, found, err)
		}
		if _, err := ss.Get(ids[i]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session %d after Erase: %v", i, err)
		}
		if found, err := ss.Erase(ids[i]); err != nil || found {
			t.Fatalf("second Erase(%d) = %v, %v", i, found, err)
		}
	}
	for _, i := range shared[2:] {
		check(i, fmt.Sprintf("c%d", i))
	}
	// The erased sessions' data is gone from the batch record itself.
	if err := st.View(func(txn store.Txn) error {
		v, err := txn.Get(store.Key(store.PrefixSessionBatch, ids[a][:batchIDLen]))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, id := range []string{ids[a], ids[b]} {
			if strings.Contains(string(v), id[batchIDLen:]) {
				t.Errorf("batch record still holds erased session %s", id)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSessionIDsSortByTime: a session made in a later millisecond has an
// ID that sorts after the IDs made before, whatever the random parts, so
// the store appends new batches.
func TestSessionIDsSortByTime(t *testing.T) {
	st := openStore(t, true)
	ss := &Sessions{Store: st, TTL: time.Hour}
	defer func(f func() time.Time) { now = f }(now)
	base := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	highest := ""
	for _, d := range []time.Duration{0, time.Millisecond, 63 * time.Millisecond, 64 * time.Millisecond,
		time.Second, time.Hour, 30 * 24 * time.Hour, 20 * 365 * 24 * time.Hour} {
		now = func() time.Time { return base.Add(d) }
		ids := make([]string, 5)
		for i := range ids {
			tp := Touchpoint{Network: "n", ClickID: "c", CapturedAt: now(), ExpiresAt: now().Add(time.Hour)}
			id, err := ss.Create([]Touchpoint{tp}, "")
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = id
		}
		if lowest := slices.Min(ids); lowest <= highest {
			t.Fatalf("ID made at +%v (%s) sorts before one made earlier (%s)", d, lowest, highest)
		}
		highest = slices.Max(ids)
	}
}

func BenchmarkEncodeSession(b *testing.B) {
	at := time.Now()
	s := &Session{CreatedAt: at, Touchpoints: []Touchpoint{{Network: "impact", Param: "irclickid", ClickID: "Qx-1_zAbCdEf",
		CapturedAt: at, ExpiresAt: at.Add(time.Hour), LandingURL: "https://shop.example/?irclickid=Qx-1_zAbCdEf&utm_source=partner&sub1=spring",
		ClientIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		Subs: map[string]string{"utm_source": "partner", "sub1": "spring"}}}}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(encodeSession(s))
	}
	b.ReportMetric(float64(n), "bytes")
}
