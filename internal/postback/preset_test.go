package postback

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

func TestPresetNames(t *testing.T) {
	want := "awin binom cj everflow firstpromoter ga4_mp get google_ads impact keitaro matomo meta_capi microsoft_ads " +
		"pinterest plausible post posthog reddit redtrack rewardful snapchat tapfiliate tiktok tune voluum"
	if got := strings.Join(PresetNames(), " "); got != want {
		t.Errorf("PresetNames = %s\nwant          %s", got, want)
	}
}

func TestPresetConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // a substring of the error
	}{
		{Config{Preset: "everflow", Params: map[string]string{"domain": "trk.example.com"}}, "needs nid"},
		{Config{Preset: "everflow", Params: map[string]string{"nid": "1"}}, "needs url or domain"},
		{Config{Preset: "tune"}, "needs url or domain"},
		{Config{Preset: "voluum"}, "needs url or domain"},
		{Config{Preset: "binom"}, "needs url or domain"},
		{Config{Preset: "redtrack"}, "needs url or domain"},
		{Config{Preset: "keitaro", Params: map[string]string{"domain": "kt.example.com"}}, "needs key"},
		{Config{Preset: "awin"}, "needs merchant"},
		{Config{Preset: "cj", Params: map[string]string{"cid": "1"}}, "needs type"},
		{Config{Preset: "impact", Params: map[string]string{"account_sid": "IR1"}}, "needs auth_token, campaign_id"},
		{Config{Preset: "impact", Params: map[string]string{"account_sid": "IR1", "auth_token": "t", "campaign_id": "1"}},
			"exactly one of event_type_id and event_type_code"},
		{Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1"}}, "needs access_token"},
		{Config{Preset: "meta_capi", Params: map[string]string{"pixelid": "1", "access_token": "t"}}, "needs pixel_id"},
		{Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t", "pixelid": "1"}},
			"does not know pixelid (did you mean `pixel_id`?)"},
		{Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t", "api_version": "21"}},
			"api_version"},
		{Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-1"}}, "needs api_secret"},
		{Config{Preset: "tiktok", Params: map[string]string{"access_token": "t"}}, "needs pixel_code"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("refresh_token", "")}, "needs refresh_token"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("customer_id", "acme")}, "customer_id"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("conversion_action", "purchases")}, "conversion_action"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("login_customer_id", "x")}, "login_customer_id"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("api_version", "26")}, "api_version"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("token_url", "oauth2.googleapis.com/token")}, "token_url"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("token_url", "https://user:pw@proxy.example.com/token")}, "token_url"},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("user_identifiers", "maybe")}, "user_identifiers"},
		{Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1"}}, "needs access_token"},
		{Config{Preset: "pinterest", Params: map[string]string{"access_token": "t"}}, "needs ad_account_id"},
		{Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t", "url": "x"}}, "does not know url"},
		{Config{Preset: "snapchat", URL: "https://tr.example.com/?access_token={sub1}", Params: map[string]string{"pixel_id": "p", "access_token": "t"}}, "sets access_token itself"},
		{Config{Preset: "reddit", Params: map[string]string{"access_token": "t"}}, "needs ad_account_id"},
		{Config{Preset: "posthog", Params: map[string]string{"api_key": "k", "region": "ap"}}, "region"},
		{Config{Preset: "plausible", Params: map[string]string{"site": "https://s.example.com/"}}, "site"},
		{Config{Preset: "matomo", Params: map[string]string{"site_id": "1"}}, "needs url or domain"},
		{Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "one"}}, "site_id"},
		{Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "goal_lead": "x"}}, "goal_lead"},
		{Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "currency": "euros"}}, "currency"},
		{Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}, Statuses: []order.Status{order.StatusRefunded}}, "cannot report refunded"},
		{Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "k"}}, "needs account_id"},
		{Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}, Statuses: []order.Status{order.StatusPending}}, "cannot report pending"},
		// URL and domain handling.
		{Config{Preset: "voluum", URL: "https://a.example.com", Params: map[string]string{"domain": "b.example.com"}}, "not both"},
		{Config{Preset: "voluum", Params: map[string]string{"domain": "evil.com/x"}}, "bare host name"},
		{Config{Preset: "voluum", URL: "https://{sub1}.example.com"}, "tokens may only stand in the query"},
		{Config{Preset: "voluum", URL: "https://v.example.com/postback?cid={click_id}"}, "sets cid itself"},
		{Config{Preset: "voluum", URL: "https://v.example.com/#x"}, "fragment"},
		{Config{Preset: "voluum", URL: "ftp://v.example.com/"}, "want http(s)"},
		{Config{Preset: "voluum", URL: "https://v.example.com/?p={clickid}"}, "unknown token"},
		// Statuses a preset cannot report.
		{Config{Preset: "awin", Params: map[string]string{"merchant": "1"}, Statuses: []order.Status{order.StatusRefunded}},
			"cannot report refunded"},
		{Config{Preset: "unknown"}, "unknown preset"},
		{Config{Preset: "evreflow"}, "unknown preset \"evreflow\" (did you mean `everflow`?)"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: err %v, want %q", tc.cfg.Preset, tc.cfg.Params, err, tc.want)
		}
		var unknownPreset *UnknownPresetError
		if err != nil && !errors.As(err, &unknownPreset) && !errors.Is(err, ErrPresetConfig) && !errors.Is(err, ErrTemplate) {
			t.Errorf("%s: %v wraps neither ErrPresetConfig nor ErrTemplate", tc.cfg.Preset, err)
		}
	}
}

func TestPresetSupports(t *testing.T) {
	A, P, J, R := order.StatusApproved, order.StatusPending, order.StatusRejected, order.StatusRefunded
	type q struct {
		event  string
		status order.Status
		want   bool
	}
	for _, tc := range []struct {
		cfg    Config
		checks []q
	}{
		{Config{Preset: "keitaro", URL: "https://kt.example.com/k/postback"}, []q{
			{"purchase", A, true}, {"purchase", P, true}, {"purchase", J, true}, {"purchase", R, true},
			{"refund", A, true}, {"lead", A, true}}},
		{Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G", "api_secret": "s"}}, []q{
			{"purchase", A, true}, {"purchase", R, true}, {"refund", A, true}, {"purchase", J, false},
			{"lead", P, true}, {"bad-name", A, false}, {"ga_custom", A, false}}},
		{Config{Preset: "everflow", Params: map[string]string{"domain": "t.example.com", "nid": "1", "event_id_lead": "3"}}, []q{
			{"purchase", A, true}, {"lead", A, true}, {"ftd", A, false}, {"purchase", R, false}, {"refund", A, false}}},
		{Config{Preset: "awin", Params: map[string]string{"merchant": "1"}}, []q{
			{"purchase", A, true}, {"purchase", P, true}, {"lead", A, false}, {"purchase", R, false}, {"purchase", J, false}}},
		{Config{Preset: "awin", Params: map[string]string{"merchant": "1", "events": "lead, purchase"}}, []q{
			{"lead", A, true}, {"signup", A, false}}},
		{Config{Preset: "cj", Params: map[string]string{"cid": "1", "type": "2", "events": "*"}}, []q{
			{"ftd", A, true}, {"refund", A, false}}},
		{Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"},
			Statuses: []order.Status{order.StatusApproved}}, []q{
			{"purchase", A, true}, {"purchase", P, false}, {"signup", A, true}, {"purchase", R, false}}},
		{Config{Preset: "tiktok", Params: map[string]string{"pixel_code": "C", "access_token": "t"}}, []q{
			{"purchase", A, true}, {"refund", A, false}, {"purchase", J, false}}},
		{Config{Preset: "impact", Params: map[string]string{"account_sid": "IR1", "auth_token": "t", "campaign_id": "1", "event_type_id": "2"}}, []q{
			{"purchase", A, true}, {"purchase", R, false}}},
		{Config{Preset: "tune", Params: map[string]string{"domain": "n.go2cloud.org"}}, []q{
			{"purchase", A, true}, {"purchase", J, false}}},
		{Config{Preset: "voluum", Params: map[string]string{"domain": "v.example.com"}}, []q{
			{"deposit", A, true}, {"purchase", R, false}}},
		{Config{Preset: "binom", Params: map[string]string{"domain": "b.example.com"}}, []q{
			{"purchase", P, true}, {"purchase", R, false}}},
		{Config{Preset: "redtrack", Params: map[string]string{"domain": "r.example.com"}}, []q{
			{"purchase", A, true}, {"purchase", J, false}}},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams()}, []q{
			{"purchase", A, true}, {"purchase", P, true}, {"lead", A, false}, {"purchase", R, false}, {order.EventRebill, A, false}}},
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("events", "lead")}, []q{
			{"lead", A, true}, {"purchase", A, false}}},
		{Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "t"}}, []q{
			{"purchase", A, true}, {"signup", P, true}, {"purchase", R, false}, {"refund", A, false}}},
		{Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}}, []q{
			{"purchase", A, true}, {"purchase", J, false}}},
		{Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}}, []q{
			{"purchase", A, true}, {"purchase", R, false}}},
		{Config{Preset: "reddit", Params: map[string]string{"ad_account_id": "a", "access_token": "t"}}, []q{
			{"lead", A, true}, {"purchase", R, false}}},
		{Config{Preset: "posthog", Params: map[string]string{"api_key": "k"}}, []q{
			{"purchase", A, true}, {"purchase", R, false}}},
		{Config{Preset: "plausible", Params: map[string]string{"site": "s.example.com"}}, []q{
			{"signup", A, true}, {"purchase", R, false}}},
		{Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "goal_lead": "4"}}, []q{
			{"purchase", A, true}, {order.EventRebill, A, true}, {"lead", A, true}, {"signup", A, false}, {"purchase", R, false}}},
		{Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}}, []q{
			{"purchase", A, true}, {order.EventRebill, A, true}, {"purchase", P, false}, {"purchase", R, false}, {"lead", A, false}}},
		{Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}}, []q{
			{"purchase", A, true}, {order.EventRebill, A, true}, {"purchase", R, true}, {"refund", A, true},
			{order.EventCancel, J, true}, {"purchase", P, false}, {"lead", A, false}}},
		{Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}}, []q{
			{"purchase", A, true}, {order.EventRebill, A, true}, {"purchase", R, false}, {"purchase", P, false}}},
	} {
		d := mustNew(t, tc.cfg)
		for _, c := range tc.checks {
			if got := d.Supports(c.event, c.status); got != c.want {
				t.Errorf("%s %v: Supports(%s, %s) = %v, want %v", tc.cfg.Preset, tc.cfg.Params, c.event, c.status, got, c.want)
			}
		}
	}
}

func TestUserURLOverridesHostAndKeepsQuery(t *testing.T) {
	d, err := New(Config{Preset: "awin", URL: "http://127.0.0.1:9000/?extra={sub1}&fixed=1",
		Params: map[string]string{"merchant": "1001"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Render(context.Background(), fixture("awin", "awc", "x"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "127.0.0.1:9000" || u.Path != "/sread.php" {
		t.Errorf("host %s path %s", u.Host, u.Path)
	}
	q := u.Query()
	if q.Get("extra") != "creative-7" || q.Get("fixed") != "1" || q.Get("merchant") != "1001" || q.Get("cks") != "x" {
		t.Errorf("query %v", q)
	}
	// A path in the user's URL replaces the preset's.
	d = mustNew(t, Config{Preset: "meta_capi", URL: "http://127.0.0.1:9000/mock/meta", Params: map[string]string{"pixel_id": "1", "access_token": "t"}})
	r, _ = d.Render(context.Background(), fixture("meta", "fbclid", "x"))
	if r.URL != "http://127.0.0.1:9000/mock/meta?access_token=t" {
		t.Errorf("meta url %s", r.URL)
	}
}

func TestMetaHashAndFbc(t *testing.T) {
	if got := fixCustomer.Email; got != fixEmailHash {
		t.Errorf("e-mail hash = %s, want Meta's example %s", got, fixEmailHash)
	}
	c := fixture("meta", "fbclid", fixFbclid)
	if got, want := metaFbc(c), "fb.1.1741944413589."+fixFbclid; got != want {
		t.Errorf("fbc = %s, want %s", got, want)
	}
	// A click of another network is no fbclid: no fbc.
	if got := metaFbc(fixture("tiktok", "ttclid", "E.C.P.x")); got != "" {
		t.Errorf("fbc from ttclid = %s", got)
	}
}

func TestGA4ClientID(t *testing.T) {
	a, b := fixture("g", "gclid", "one"), fixture("g", "gclid", "one")
	b.Order.ID = "another order"
	if ga4ClientID(a) != ga4ClientID(b) {
		t.Error("synthesized client_id differs for the same click")
	}
	if ga4ClientID(a) == ga4ClientID(fixture("g", "gclid", "two")) {
		t.Error("two clicks share a synthesized client_id")
	}
	if !strings.HasSuffix(ga4ClientID(a), ".1741944413") {
		t.Errorf("client_id %s does not end in the click's seconds", ga4ClientID(a))
	}
	a.GAClientID = "1197596843.1673515099"
	if ga4ClientID(a) != "1197596843.1673515099" {
		t.Error("GAClientID not used")
	}
}

func TestParamNames(t *testing.T) {
	got := strings.Join(ParamNames(), " ")
	want := "access_token account_id account_sid ad_account_id api_key api_secret api_version auth_token campaign_id cid " +
		"client_id client_secret commission_group commission_type conversion_action currency customer_id developer_token " +
		"domain event_id event_type_code event_type_id events key login_customer_id measurement_id merchant nid offer_id " +
		"pixel_code pixel_id refresh_token region return security_token site site_id tag_id test_event_code token_auth " +
		"token_url type user_identifiers verification_token"
	if got != want {
		t.Errorf("ParamNames:\n got %s\nwant %s", got, want)
	}
}
