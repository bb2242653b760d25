package conversion

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

func newTracker(t *testing.T) (*Tracker, *capture.Sessions) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
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
	sessions := &capture.Sessions{Store: st, TTL: time.Hour}
	tr := &Tracker{
		Outbox:   outbox.New(st),
		Sessions: sessions,
		Networks: map[string]Network{
			"aff": {Attribution: attribution.Network{Role: attribution.RoleAffiliate, Window: time.Hour},
				Destination: dest("get", "http://127.0.0.1:1/pb?c={click_id}&o={order_id}&a={amount}&s={status}")},
			"keitaro": {Attribution: attribution.Network{Role: attribution.RolePlatform, Window: time.Hour},
				Destination: dest("keitaro", "http://127.0.0.1:1/k/postback")},
		},
	}
	return tr, sessions
}

func session(t *testing.T, ss *capture.Sessions, id string, tps ...capture.Touchpoint) *capture.Session {
	t.Helper()
	if err := ss.Add(id, tps, ""); err != nil {
		t.Fatal(err)
	}
	s, err := ss.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func click(network, id string) capture.Touchpoint {
	at := time.Now().Add(-time.Minute)
	return capture.Touchpoint{Network: network, ClickID: id, CapturedAt: at, ExpiresAt: at.Add(time.Hour)}
}

func sale(id string) order.Order {
	return order.Order{Source: "page", Event: "purchase", ID: id, Amount: order.Decimal{Coef: 4990, Scale: 2}, HasAmount: true, Currency: "USD", Status: order.StatusApproved}
}

func urls(t *testing.T, tr *Tracker) []string {
	t.Helper()
	ds, err := tr.Outbox.Deliveries(outbox.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, ds[i].Request.URL)
	}
	return out
}

func TestConvertCreditsOncePerNetwork(t *testing.T) {
	tr, ss := newTracker(t)
	s := session(t, ss, "s1", click("aff", "A1"), click("keitaro", "K1"))
	res, err := tr.Convert(sale("1001"), s, "", nil)
	if err != nil || res.Queued != 2 {
		t.Fatalf("first: %+v %v", res, err)
	}
	res, err = tr.Convert(sale("1001"), s, "", nil)
	if err != nil || res.Queued != 0 || res.Duplicates != 2 || res.Conversion != nil {
		t.Fatalf("repeat: %+v %v", res, err)
	}
	got := urls(t, tr)
	if len(got) != 2 || !strings.Contains(got[0]+got[1], "c=A1&o=1001&a=49.90&s=approved") {
		t.Fatalf("deliveries %v", got)
	}
}

func TestRefundReachesCreditedNetworksByAlias(t *testing.T) {
	tr, ss := newTracker(t)
	s := session(t, ss, "s1", click("aff", "A1"), click("keitaro", "K1"))
	o := sale("cs_1")
	o.Aliases = []string{"pi_1"}
	if _, err := tr.Convert(o, s, "", nil); err != nil {
		t.Fatal(err)
	}
	refund := order.Order{Source: "webhook:stripe", Event: "purchase", ID: "pi_1", Status: order.StatusRefunded}
	// No session: the refund comes from a webhook long after the visit.
	res, err := tr.Convert(refund, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// keitaro takes status updates; the plain GET template does not.
	if res.Queued != 1 || len(res.Skipped) != 1 {
		t.Fatalf("refund: %+v", res)
	}
	var update string
	for _, u := range urls(t, tr) {
		if strings.Contains(u, "status=rejected") {
			update = u
		}
	}
	if !strings.Contains(update, "subid=K1") || !strings.Contains(update, "tid=cs_1") {
		t.Fatalf("refund postback %q: want the original click and order ID (all: %v)", update, urls(t, tr))
	}
}

func TestWebhookFirstThenReturnPage(t *testing.T) {
	tr, ss := newTracker(t)
	o := sale("cs_2")
	o.Source = "webhook:stripe"
	res, err := tr.Convert(o, nil, "", []byte("e/stripe/evt_2"))
	if err != nil || res.Queued != 0 {
		t.Fatalf("webhook without a visitor: %+v %v", res, err)
	}
	s := session(t, ss, "s2", click("aff", "A2"))
	res, err = tr.Link("cs_2", s)
	if err != nil || res.Queued != 1 {
		t.Fatalf("return page: %+v %v", res, err)
	}
	// The page revisited (back button) links nothing new.
	if res, err = tr.Link("cs_2", s); err != nil || res.Queued != 0 {
		t.Fatalf("revisit: %+v %v", res, err)
	}
	if got := urls(t, tr); len(got) != 1 || !strings.Contains(got[0], "c=A2&o=cs_2&a=49.90") {
		t.Fatalf("deliveries %v", got)
	}
}

func TestReturnPageFirstThenWebhook(t *testing.T) {
	tr, ss := newTracker(t)
	s := session(t, ss, "s3", click("aff", "A3"))
	if res, err := tr.Link("cs_3", s); err != nil || res.Queued != 0 {
		t.Fatalf("link: %+v %v", res, err)
	}
	o := sale("cs_3")
	o.Source = "webhook:stripe"
	res, err := tr.Convert(o, nil, "", []byte("e/stripe/evt_3"))
	if err != nil || res.Queued != 1 {
		t.Fatalf("webhook after the page: %+v %v", res, err)
	}
	// The platform retries the same event: nothing new.
	res, err = tr.Convert(o, nil, "", []byte("e/stripe/evt_3"))
	if err != nil || !res.SeenEvent || res.Queued != 0 {
		t.Fatalf("retried event: %+v %v", res, err)
	}
}

func TestNoCreditWithoutTouchpoints(t *testing.T) {
	tr, ss := newTracker(t)
	s := session(t, ss, "s4", click("gone", "X"))
	res, err := tr.Convert(sale("5"), s, "", nil)
	if err != nil || res.Queued != 0 || len(res.Credits) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := tr.Convert(order.Order{}, s, "", nil); err == nil {
		t.Fatal("an order without ID must be refused")
	}
}
