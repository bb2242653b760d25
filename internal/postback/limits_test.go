package postback

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// TestSendTimeLimits: what a platform would refuse is refused at send time
// as ErrRejected, with a reason that says why, and what it takes passes.
func TestSendTimeLimits(t *testing.T) {
	day := 24 * time.Hour
	at := func(age time.Duration) func() time.Time { return func() time.Time { return fixOrderTime.Add(age) } }
	for _, tc := range []struct {
		name   string
		cfg    Config
		now    func() time.Time
		change func(c *record.Postback)
		reason string // "" when the conversion must render
	}{
		{"meta: 6 days old", Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"}}, at(6 * day), nil, ""},
		{"meta: 8 days old", Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"}}, at(8 * day), nil, "7 days"},
		{"microsoft: 8 days old", Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "t"}}, at(8 * day), nil, "7 days"},
		{"snapchat: 36 days old", Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}}, at(36 * day), nil, ""},
		{"snapchat: 38 days old", Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}}, at(38 * day), nil, "37 days"},
		{"matomo: 2 days old without token_auth", Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1"}}, at(2 * day), nil, "token_auth"},
		{"matomo: 2 days old with token_auth", Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "token_auth": "x"}}, at(2 * day), nil, ""},
		{"matomo: another currency than the site's", Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "currency": "EUR"}}, nil, nil, "site's currency EUR"},
		{"pinterest: no e-mail, no IP", Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}}, nil,
			func(c *record.Postback) { c.Order.Customer, c.Touchpoint.ClientIP = nil, "" }, "e-mail or both"},
		{"pinterest: no e-mail but IP and user agent", Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}}, nil,
			func(c *record.Postback) { c.Order.Customer = nil }, ""},
		{"plausible: no user agent", Config{Preset: "plausible", Params: map[string]string{"site": "s.example.com"}}, nil,
			func(c *record.Postback) { c.Touchpoint.UserAgent = "" }, "user agent"},
		{"plausible: event name too long", Config{Preset: "plausible", Params: map[string]string{"site": "s.example.com"}}, nil,
			func(c *record.Postback) { c.Order.Event = strings.Repeat("e", 121) }, "120 characters"},
		{"rewardful: a via token is no referral", Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}}, nil,
			func(c *record.Postback) { c.Touchpoint.Param, c.Touchpoint.ClickID = "via", "jane" }, "referral ID"},
		{"rewardful: no amount", Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}}, nil,
			func(c *record.Postback) { c.Order.HasAmount = false }, "amount"},
		{"firstpromoter: no amount", Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}}, nil,
			func(c *record.Postback) { c.Order.HasAmount = false }, "amount"},
		{"tapfiliate: no currency", Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}}, nil,
			func(c *record.Postback) { c.Order.Currency = "" }, "currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Now = tc.now
			d := mustNew(t, tc.cfg)
			c := fixture("n", "clickid", "d154e622-278a-4103-b191-5cbebae4047a")
			if tc.change != nil {
				tc.change(c)
			}
			_, err := d.Render(context.Background(), c)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want ErrRejected saying %q", err, tc.reason)
			}
		})
	}
}

// TestConsentWithholdsCustomer: the order's hashed identifiers reach the
// platforms that take them, and none when the visitor denied ad_user_data.
func TestConsentWithholdsCustomer(t *testing.T) {
	tok := newTokenStub(t)
	for _, cfg := range []Config{
		{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"}},
		{Preset: "tiktok", Params: map[string]string{"pixel_code": "C", "access_token": "t"}},
		{Preset: "google_ads", Params: googleAdsGoldenParams("token_url", tok.srv.URL)},
		{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "t"}},
		{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}},
		{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}},
		{Preset: "reddit", Params: map[string]string{"ad_account_id": "a", "access_token": "t"}},
	} {
		d := mustNew(t, cfg)
		for _, consent := range []*record.Consent{nil, {AdUserData: record.Granted}, {AdUserData: record.Denied}} {
			c := fixture("n", "gclid", "EAIaIQobChMI")
			c.Touchpoint.Consent = consent
			r, err := d.Render(context.Background(), c)
			if err != nil {
				t.Fatalf("%s: %v", cfg.Preset, err)
			}
			// Every platform takes the e-mail in one of these forms.
			sent := false
			for _, h := range []string{fixCustomer.Email, fixCustomer.EmailGoogle, fixCustomer.EmailReddit, fixCustomer.Phone, fixCustomer.PhoneE164} {
				sent = sent || strings.Contains(r.Body, h)
			}
			denied := consent != nil && consent.AdUserData == record.Denied
			if sent == denied {
				t.Errorf("%s, consent %+v: identifiers sent %v", cfg.Preset, consent, sent)
			}
		}
	}
	// Analytics and commission programs are never told of the customer.
	for _, cfg := range []Config{
		{Preset: "posthog", Params: map[string]string{"api_key": "k"}},
		{Preset: "plausible", Params: map[string]string{"site": "s.example.com"}},
		{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1"}},
		{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}},
		{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}},
	} {
		r, err := mustNew(t, cfg).Render(context.Background(), fixture("n", "ref", "x"))
		if err != nil {
			t.Fatalf("%s: %v", cfg.Preset, err)
		}
		for _, h := range []string{fixCustomer.Email, fixCustomer.Phone, fixCustomer.FirstName, "Smith", "john_smith"} {
			if strings.Contains(r.URL+r.Body, h) {
				t.Errorf("%s was told %q", cfg.Preset, h)
			}
		}
	}
}

// TestMetaTestEventCode: a configured test_event_code goes with test fires
// only, never diverting real conversions into Meta's test tool.
func TestMetaTestEventCode(t *testing.T) {
	d := mustNew(t, Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t", "test_event_code": "TEST4242"}})
	c := fixture("meta", "fbclid", fixFbclid)
	real, err := d.Render(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	c.Test = true
	test, err := d.Render(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(real.Body, "TEST4242") || !strings.Contains(test.Body, `"test_event_code":"TEST4242"`) {
		t.Errorf("real %s\ntest %s", real.Body, test.Body)
	}
}

// TestCancellationOnlyWhereNamed: a cancellation is sent only to a
// destination whose events name it, never through "every event".
func TestCancellationOnlyWhereNamed(t *testing.T) {
	J := order.StatusRejected
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{Preset: "keitaro", URL: "https://kt.example.com/k/postback"}, false},
		{Config{Preset: "keitaro", URL: "https://kt.example.com/k/postback", Params: map[string]string{"events": "purchase,cancellation"}}, true},
		{Config{URL: "https://n.example.com/?c={click_id}&s={status}"}, false},
		{Config{URL: "https://n.example.com/?c={click_id}&s={status}", Events: []string{order.EventCancel}}, true},
		{Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}}, true},
		{Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}}, false},
	} {
		if got := mustNew(t, tc.cfg).Supports(order.EventCancel, J); got != tc.want {
			t.Errorf("%s %v %v: Supports(cancellation) = %v", tc.cfg.Preset, tc.cfg.Params, tc.cfg.Events, got)
		}
	}
}

func TestRecurring(t *testing.T) {
	for _, name := range PresetNames() {
		want := name == "rewardful" || name == "firstpromoter" || name == "tapfiliate"
		if Recurring(name) != want {
			t.Errorf("Recurring(%s) = %v", name, !want)
		}
	}
	// Recurring programs take rebills by default; they are paid on paid
	// sales only.
	for _, cfg := range []Config{
		{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}},
		{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}},
		{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}},
	} {
		d := mustNew(t, cfg)
		if !d.Supports(order.EventRebill, order.StatusApproved) || d.Supports("purchase", order.StatusPending) {
			t.Errorf("%s: rebill %v, pending purchase %v", cfg.Preset,
				d.Supports(order.EventRebill, order.StatusApproved), d.Supports("purchase", order.StatusPending))
		}
	}
}
