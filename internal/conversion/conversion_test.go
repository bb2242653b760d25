package conversion

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

var bg = context.Background()

func newTracker(t *testing.T) *Tracker {
	t.Helper()
	st, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	dest := func(preset, url string) postback.Destination {
		d, err := postback.New(postback.Config{Preset: preset, URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return &Tracker{
		Store: st,
		Networks: map[string]Network{
			"aff": {Attribution: attribution.Network{Role: attribution.RoleAffiliate, Window: time.Hour},
				Destination: dest("get", "http://127.0.0.1:1/pb?c={click_id}&o={order_id}&a={amount}")},
			"keitaro": {Attribution: attribution.Network{Role: attribution.RolePlatform, Window: time.Hour},
				Destination: dest("keitaro", "http://127.0.0.1:1/k/postback")},
		},
	}
}

// session stores a session with the given clicks, a minute old.
func session(t *testing.T, tr *Tracker, clicks ...[2]string) *record.Session {
	t.Helper()
	at := time.Now().Add(-time.Minute)
	var tps []record.Touchpoint
	for _, c := range clicks {
		tps = append(tps, record.Touchpoint{Network: c[0], ClickID: c[1], CapturedAt: at, ExpiresAt: at.Add(time.Hour)})
	}
	id, _, err := (&capture.Sessions{Store: tr.Store}).Capture(bg, "", tps, "", at)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.Store.Session(bg, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sale(id string) order.Order {
	return order.Order{Source: "page", Event: "purchase", ID: id, Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true, Currency: "USD", Status: order.StatusApproved}
}

// sent renders every queued delivery as the dispatcher would, oldest first.
func sent(t *testing.T, tr *Tracker) []string {
	t.Helper()
	ds, _, err := tr.Store.Deliveries(bg, store.DeliveryQuery{Limit: store.MaxLimit}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ds) - 1; i >= 0; i-- {
		r, err := tr.Networks[ds[i].Network].Destination.Render(bg, &ds[i].Postback)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.URL)
	}
	return out
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestConvertCreditsOncePerNetwork(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"aff", "A1"}, [2]string{"keitaro", "K1"})
	res, err := tr.Convert(bg, sale("1001"), s, "", "")
	if err != nil || res.Queued != 2 || !slices.Equal(sorted(res.QueuedNetworks), []string{"aff", "keitaro"}) || len(res.DuplicateNetworks) != 0 {
		t.Fatalf("first: %+v %v", res, err)
	}
	res, err = tr.Convert(bg, sale("1001"), s, "", "")
	if err != nil || res.Queued != 0 || res.Duplicates != 2 || res.Conversion != nil ||
		len(res.QueuedNetworks) != 0 || !slices.Equal(sorted(res.DuplicateNetworks), []string{"aff", "keitaro"}) {
		t.Fatalf("repeat: %+v %v", res, err)
	}
	got := sent(t, tr)
	if len(got) != 2 || !strings.Contains(got[0]+got[1], "c=A1&o=1001&a=49.90") {
		t.Fatalf("deliveries %v", got)
	}
}

func TestRefundReachesCreditedNetworksByAlias(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"aff", "A1"}, [2]string{"keitaro", "K1"})
	o := sale("cs_1")
	o.Aliases = []string{"pi_1"}
	if _, err := tr.Convert(bg, o, s, "", ""); err != nil {
		t.Fatal(err)
	}
	// No session: the refund comes from a webhook long after the visit.
	refund := order.Order{Source: "webhook", Event: "purchase", ID: "pi_1", Status: order.StatusRefunded}
	res, err := tr.Convert(bg, refund, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// keitaro takes status updates; the plain GET template without
	// {status} does not.
	if res.Queued != 1 || len(res.Skipped) != 1 {
		t.Fatalf("refund: %+v", res)
	}
	var update string
	for _, u := range sent(t, tr) {
		if strings.Contains(u, "status=rejected") {
			update = u
		}
	}
	if !strings.Contains(update, "subid=K1") || !strings.Contains(update, "tid=cs_1") {
		t.Fatalf("refund postback %q: want the original click and order ID (all: %v)", update, sent(t, tr))
	}
}

func TestStatusTemplateTakesRefunds(t *testing.T) {
	tr := newTracker(t)
	d, err := postback.New(postback.Config{URL: "http://127.0.0.1:1/pb?c={click_id}&o={order_id}&s={status}"})
	if err != nil {
		t.Fatal(err)
	}
	tr.Networks["aff"] = Network{Attribution: attribution.Network{Role: attribution.RoleAffiliate, Window: time.Hour}, Destination: d}
	s := session(t, tr, [2]string{"aff", "A1"})
	if _, err := tr.Convert(bg, sale("r1"), s, "", ""); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Convert(bg, order.Order{Source: "webhook", Event: "purchase", ID: "r1", Status: order.StatusRefunded}, nil, "", "")
	if err != nil || res.Queued != 1 {
		t.Fatalf("refund to a template with {status}: %+v %v", res, err)
	}
	if got := sent(t, tr); len(got) != 2 || !strings.HasSuffix(got[1], "c=A1&o=r1&s=refunded") {
		t.Fatalf("postbacks %v", got)
	}
}

func TestWebhookFirstThenReturnPage(t *testing.T) {
	tr := newTracker(t)
	o := sale("cs_2")
	o.Source = "webhook"
	res, err := tr.Convert(bg, o, nil, "", "stripe/evt_2")
	if err != nil || res.Queued != 0 || res.Conversion == nil || !strings.Contains(res.Conversion.Decision, "no visitor") {
		t.Fatalf("webhook without a visitor: %+v %v", res, err)
	}
	s := session(t, tr, [2]string{"aff", "A2"})
	res, err = tr.Link(bg, "cs_2", s)
	if err != nil || res.Queued != 1 {
		t.Fatalf("return page: %+v %v", res, err)
	}
	// The page revisited (back button) changes nothing.
	if res, err = tr.Link(bg, "cs_2", s); err != nil || res.Queued != 0 || res.Linked {
		t.Fatalf("revisit: %+v %v", res, err)
	}
	if got := sent(t, tr); len(got) != 1 || !strings.Contains(got[0], "c=A2&o=cs_2&a=49.90") {
		t.Fatalf("deliveries %v", got)
	}
}

func TestReturnPageFirstThenWebhook(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"aff", "A3"})
	if res, err := tr.Link(bg, "cs_3", s); err != nil || !res.Linked || res.Queued != 0 {
		t.Fatalf("link: %+v %v", res, err)
	}
	o := sale("cs_3")
	o.Source = "webhook"
	res, err := tr.Convert(bg, o, nil, "", "stripe/evt_3")
	if err != nil || res.Queued != 1 {
		t.Fatalf("webhook after the page: %+v %v", res, err)
	}
	// The platform retries the same event: nothing new.
	res, err = tr.Convert(bg, o, nil, "", "stripe/evt_3")
	if err != nil || !res.SeenEvent || res.Queued != 0 {
		t.Fatalf("retried event: %+v %v", res, err)
	}
}

// TestPageAndWebhookRace runs a return page's link and the platform's
// webhook for one order at the same moment, many times: whichever commits
// first, the order is credited exactly once.
func TestPageAndWebhookRace(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"aff", "RACE"})
	for i := range 40 {
		id := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := tr.Link(bg, id, s); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			o := sale(id)
			o.Source = "webhook"
			if _, err := tr.Convert(bg, o, nil, "", "stripe/"+id); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
	}
	got := sent(t, tr)
	if len(got) != 40 {
		t.Fatalf("%d postbacks for 40 orders raced by a page and a webhook, want 40", len(got))
	}
}

func TestAnotherVisitorCannotTakeALinkedOrder(t *testing.T) {
	tr := newTracker(t)
	owner := session(t, tr, [2]string{"aff", "OWNER"})
	thief := session(t, tr, [2]string{"aff", "THIEF"})
	if res, err := tr.Link(bg, "o-9", owner); err != nil || !res.Linked {
		t.Fatalf("link: %+v %v", res, err)
	}
	if res, err := tr.Link(bg, "o-9", thief); err != nil || res.Linked {
		t.Fatalf("a second visitor re-linked the order: %+v %v", res, err)
	}
	// Even a conversion page seen by the other visitor credits the first.
	if _, err := tr.Convert(bg, sale("o-9"), thief, "", ""); err != nil {
		t.Fatal(err)
	}
	if got := sent(t, tr); len(got) != 1 || !strings.Contains(got[0], "c=OWNER") {
		t.Fatalf("postbacks %v, want the visitor who linked the order", got)
	}
}

func TestInvalidOrdersAreHeld(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"aff", "A5"})
	for _, tc := range []struct {
		name string
		edit func(*order.Order)
	}{
		{"negative", func(o *order.Order) { o.Amount.Coef = -5000 }},
		{"unknown currency", func(o *order.Order) { o.Currency = "ZZZ" }},
		{"long ID", func(o *order.Order) { o.ID = strings.Repeat("x", 10<<10) }},
		{"unreadable amount", func(o *order.Order) { o.HasAmount = false; o.Invalid = []string{"amount: 1e30 out of range"} }},
	} {
		o := sale("held-" + tc.name)
		o.Source = "webhook"
		tc.edit(&o)
		res, err := tr.Convert(bg, o, s, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Queued != 0 || res.Held == "" || res.Conversion == nil || res.Conversion.Held == "" {
			t.Errorf("%s: %+v", tc.name, res)
		}
		if len(res.Conversion.Order.ID) > order.MaxIDLength {
			t.Errorf("%s: stored an order ID of %d bytes", tc.name, len(res.Conversion.Order.ID))
		}
	}
	if got := sent(t, tr); len(got) != 0 {
		t.Fatalf("invalid orders were sent: %v", got)
	}
}

func TestSessionDailyLimit(t *testing.T) {
	tr := newTracker(t)
	tr.SessionDailyLimit = 3
	s := session(t, tr, [2]string{"aff", "A6"})
	var held []string
	for i := range 5 {
		res, err := tr.Convert(bg, sale(fmt.Sprint("forged-", i)), s, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Held != "" {
			held = append(held, res.Conversion.Order.ID)
		}
	}
	if !slices.Equal(held, []string{"forged-3", "forged-4"}) || len(sent(t, tr)) != 3 {
		t.Fatalf("held %v, sent %d", held, len(sent(t, tr)))
	}
	// A webhook, which a visitor cannot forge, is not limited.
	o := sale("real")
	o.Source = "webhook"
	if res, err := tr.Convert(bg, o, s, "", ""); err != nil || res.Queued != 1 {
		t.Fatalf("webhook order of a session over its page limit: %+v %v", res, err)
	}
}

func TestRebillCreditsTheFirstSale(t *testing.T) {
	tr := newTracker(t)
	d, err := postback.New(postback.Config{URL: "http://127.0.0.1:1/pb?c={click_id}&o={order_id}&e={event}"})
	if err != nil {
		t.Fatal(err)
	}
	tr.Networks["aff"] = Network{Attribution: attribution.Network{Role: attribution.RoleAffiliate, Window: time.Hour}, Destination: d}
	s := session(t, tr, [2]string{"aff", "SUB"})
	first := sale("cs_sub")
	first.Source = "webhook"
	first.Aliases = []string{"sub_1"}
	if res, err := tr.Convert(bg, first, s, "", ""); err != nil || res.Queued != 1 {
		t.Fatalf("first sale: %+v %v", res, err)
	}
	for _, inv := range []string{"in_1", "in_2", "in_1"} {
		rebill := order.Order{Source: "webhook", Event: order.EventRebill, ID: inv, OriginalID: "sub_1", Status: order.StatusApproved,
			Amount: order.Decimal{Coef: 990, Scale: 2}, HasAmount: true, Currency: "USD"}
		if _, err := tr.Convert(bg, rebill, nil, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	got := sent(t, tr)
	if len(got) != 3 || !strings.HasSuffix(got[1], "c=SUB&o=in_1&e=rebill") || !strings.HasSuffix(got[2], "c=SUB&o=in_2&e=rebill") {
		t.Fatalf("postbacks %v, want one sale and two rebills", got)
	}
	// A network whose rebill period ended gets no more rebills.
	n := tr.Networks["aff"]
	n.RebillFor = time.Nanosecond
	tr.Networks["aff"] = n
	res, err := tr.Convert(bg, order.Order{Source: "webhook", Event: order.EventRebill, ID: "in_3", OriginalID: "sub_1", Status: order.StatusApproved}, nil, "", "")
	if err != nil || res.Queued != 0 {
		t.Fatalf("rebill after the period: %+v %v", res, err)
	}
}

func TestNoCreditWithoutTouchpoints(t *testing.T) {
	tr := newTracker(t)
	s := session(t, tr, [2]string{"gone", "X"})
	res, err := tr.Convert(bg, sale("5"), s, "", "")
	if err != nil || res.Queued != 0 || len(res.Credits) != 0 || res.Conversion == nil {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := tr.Convert(bg, order.Order{}, s, "", ""); err == nil {
		t.Fatal("an order without ID must be refused")
	}
}
