package stats

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

func TestTallyFlushesAndKeepsWhatFailed(t *testing.T) {
	st, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(10 * time.Minute)
	tally := New(st, func() time.Time { return hour })
	ctx := context.Background()
	tally.Add(store.StatClicks, "everflow", "", "", "", 1, 0)
	tally.Add(store.StatClicks, "everflow", "", "", "", 2, 0)
	tally.Add(store.StatConversions, "everflow", "purchase", "USD", "credited", 1, 4990)
	if err := tally.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A flush into a closed store fails; its counts wait for the next.
	tally.Add(store.StatClicks, "everflow", "", "", "", 4, 0)
	_ = st.Close()
	if err := tally.Flush(ctx); err == nil {
		t.Fatal("a flush into a closed store succeeded")
	}
	st2, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	tally.store = st2
	if err := tally.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st2.Stats(ctx, hour.Add(-time.Hour), hour.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].Count != 4 {
		t.Fatalf("counts kept across a failed flush: %+v %v", got, err)
	}
}
