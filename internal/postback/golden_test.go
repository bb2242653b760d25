package postback

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files from the current output")

// goldenCase is one rendered request checked into testdata/golden.
type goldenCase struct {
	name string
	cfg  Config
	conv func() *record.Postback
}

const efClick = "102ab3c4d5e6f708192a3b4c5d6e7f80" // 32 characters, as Everflow's are

var goldenCases = map[string][]goldenCase{
	"everflow": {
		{"purchase", Config{Preset: "everflow", Params: map[string]string{"domain": "trk.example.com", "nid": "123"}},
			func() *record.Postback { return fixture("everflow", "_ef_transaction_id", efClick) }},
		{"lead with event id and token", Config{Preset: "everflow", URL: "https://MY_NETWORK_ID.servecvr.com",
			Params: map[string]string{"nid": "123", "event_id_lead": "7", "verification_token": "s3cr3t"}},
			func() *record.Postback {
				c := fixture("everflow", "transaction_id", efClick)
				c.Order.Event, c.Order.HasAmount, c.Order.Coupon = "lead", false, ""
				return c
			}},
	},
	"tune": {
		{"purchase", Config{Preset: "tune", URL: "https://examplenetwork.go2cloud.org", Params: map[string]string{"offer_id": "26"}},
			func() *record.Postback { return fixture("tune", "transaction_id", "1027c887059b47bc69c699f45466b9") }},
	},
	"voluum": {
		{"purchase", Config{Preset: "voluum", Params: map[string]string{"domain": "track.example.com"}},
			func() *record.Postback { return fixture("voluum", "clickid", "c384EFV6JHQODRN70575OK6UG5") }},
	},
	"binom": {
		{"pending purchase", Config{Preset: "binom", URL: "https://binom.example.com/"},
			func() *record.Postback {
				c := fixture("binom", "clickid", "e2f3he2tfe65a1")
				c.Order.Status = order.StatusPending
				return c
			}},
	},
	"keitaro": {
		{"approved sale", Config{Preset: "keitaro", Params: map[string]string{"domain": "kt.example.com", "key": "a1b2c3"}},
			func() *record.Postback { return fixture("keitaro", "subid", "3kf9a1b2c") }},
		{"pending as lead, with return", Config{Preset: "keitaro", Params: map[string]string{"domain": "kt.example.com", "key": "a1b2c3", "return": "OK"}},
			func() *record.Postback {
				c := fixture("keitaro", "subid", "3kf9a1b2c")
				c.Order.Status = order.StatusPending
				return c
			}},
		{"refund as rejected, full path url", Config{Preset: "keitaro", URL: "https://kt.example.com/a1b2c3/postback"},
			func() *record.Postback {
				c := fixture("keitaro", "subid", "3kf9a1b2c")
				c.Order.Status = order.StatusRefunded
				return c
			}},
	},
	"redtrack": {
		{"purchase", Config{Preset: "redtrack", Params: map[string]string{"domain": "rt.example.com"}},
			func() *record.Postback { return fixture("redtrack", "clickid", "64f0c2a1e7b9d3000123abcd") }},
	},
	"awin": {
		{"purchase", Config{Preset: "awin", Params: map[string]string{"merchant": "1001", "commission_group": "NEW"}},
			func() *record.Postback {
				return fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa")
			}},
		{"test fire, no coupon", Config{Preset: "awin", Params: map[string]string{"merchant": "1001"}},
			func() *record.Postback {
				c := fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa")
				c.Test, c.Order.Coupon = true, ""
				return c
			}},
	},
	"cj": {
		{"items", Config{Preset: "cj", Params: map[string]string{"cid": "1500000", "type": "400000"}},
			func() *record.Postback {
				return withItems(fixture("cj", "cjevent", "656e8fa049ec11ea8237023d0a240612"))
			}},
		{"order total", Config{Preset: "cj", Params: map[string]string{"cid": "1500000", "type": "400000"}},
			func() *record.Postback { return fixture("cj", "cjevent", "656e8fa049ec11ea8237023d0a240612") }},
	},
	"impact": {
		{"items", Config{Preset: "impact", Params: map[string]string{
			"account_sid": "IRabc123", "auth_token": "tok", "campaign_id": "1000", "event_type_id": "4000"}},
			func() *record.Postback {
				return withItems(fixture("impact", "irclickid", "SKhRQaSXwxyOUQ:wUx0Mo36FUkiXxtxVUQTEzY0"))
			}},
		{"order total by event code", Config{Preset: "impact", Params: map[string]string{
			"account_sid": "IRabc123", "auth_token": "tok", "campaign_id": "1000", "event_type_code": "SALE"}},
			func() *record.Postback {
				return fixture("impact", "irclickid", "SKhRQaSXwxyOUQ:wUx0Mo36FUkiXxtxVUQTEzY0")
			}},
	},
	"meta_capi": {
		{"purchase", Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1234567890", "access_token": "EAAB"}},
			func() *record.Postback { return fixture("meta", "fbclid", fixFbclid) }},
		{"signup, no amount, test fire", Config{Preset: "meta_capi", Params: map[string]string{
			"pixel_id": "1234567890", "access_token": "EAAB", "api_version": "v22.0", "test_event_code": "TEST123"}},
			func() *record.Postback {
				c := fixture("meta", "fbclid", fixFbclid)
				c.Order.Event, c.Order.HasAmount, c.Order.Customer, c.Test = "signup", false, nil, true
				return c
			}},
	},
	"ga4_mp": {
		{"purchase with items", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := withItems(fixture("google_ads", "gclid", "EAIaIQobChMI"))
				c.GAClientID = "1197596843.1673515099"
				return c
			}},
		{"refund", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.GAClientID = "1197596843.1673515099"
				c.Order.Status, c.Order.Coupon = order.StatusRefunded, ""
				return c
			}},
		{"lead, synthesized client id, test fire", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.Order.Event, c.Order.HasAmount, c.Order.Coupon, c.Test = "lead", false, "", true
				return c
			}},
		{"consent signals of the click", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.GAClientID = "1197596843.1673515099"
				c.Order.Coupon = ""
				c.Touchpoint.Consent = &record.Consent{AdUserData: record.Granted, AdPersonalization: record.Denied, Purposes: []string{"1", "7"}}
				return c
			}},
		{"consent unknown", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.GAClientID = "1197596843.1673515099"
				c.Order.Coupon = ""
				c.Touchpoint.Consent = &record.Consent{Purposes: []string{"marketing"}}
				return c
			}},
	},
	"tiktok": {
		{"purchase", Config{Preset: "tiktok", Params: map[string]string{"pixel_code": "C4ABCDEFGH", "access_token": "tt-token"}},
			func() *record.Postback { return withItems(fixture("tiktok", "ttclid", "E.C.P.abcDEF123")) }},
	},
	"google_ads": {
		{"purchase by gclid, consent granted", Config{Preset: "google_ads", Params: googleAdsGoldenParams()},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI8vTx-Lm5_QIVB-7tCh0EAAYASAAEgJ")
				c.Touchpoint.Consent = &record.Consent{AdUserData: record.Granted, AdPersonalization: record.Denied}
				return c
			}},
		{"test fire by wbraid through a manager account, ad_user_data denied", Config{Preset: "google_ads",
			Params: googleAdsGoldenParams("login_customer_id", "987-654-3210", "conversion_action", "customers/1234567890/conversionActions/111")},
			func() *record.Postback {
				c := fixture("google_ads", "wbraid", "CjkKEQjwqrW0BhD")
				c.Touchpoint.Consent = &record.Consent{AdUserData: record.Denied}
				c.Test = true
				return c
			}},
	},
	"microsoft_ads": {
		{"purchase by msclkid", Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "343123456", "access_token": "uet-token"}},
			func() *record.Postback { return fixture("microsoft", "msclkid", "f894f652ea334e739002f7167ab8f8e3") }},
	},
	"pinterest": {
		{"purchase by epik with items", Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "549757463328", "access_token": "pina_token"}},
			func() *record.Postback {
				return withItems(fixture("pinterest", "epik", "dj0yJnU9Q2ZKTnRrVjNFQWdEZjBqbUpfNU5tTjZsbDY"))
			}},
		{"lead test fire", Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "549757463328", "access_token": "pina_token"}},
			func() *record.Postback {
				c := fixture("pinterest", "epik", "dj0yJnU9Q2ZKTnRrVjNFQWdEZjBqbUpfNU5tTjZsbDY")
				c.Order.Event, c.Order.HasAmount, c.Test = "lead", false, true
				return c
			}},
	},
	"snapchat": {
		{"purchase by ScCid with items", Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "5bf81ee1-15b1-4dc1-b636-d7dae49b950e", "access_token": "snap-token"}},
			func() *record.Postback {
				return withItems(fixture("snapchat", "ScCid", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"))
			}},
		{"rebill test fire goes to validate", Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "5bf81ee1-15b1-4dc1-b636-d7dae49b950e", "access_token": "snap-token"}},
			func() *record.Postback {
				c := fixture("snapchat", "sccid", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
				c.Order.Event, c.Test = order.EventRebill, true
				return c
			}},
	},
	"reddit": {
		{"purchase by rdt_cid", Config{Preset: "reddit", Params: map[string]string{"ad_account_id": "t2_a1b2c3", "access_token": "rdt-token"}},
			func() *record.Postback { return withItems(fixture("reddit", "rdt_cid", "4875629185693457012")) }},
		{"signup test fire", Config{Preset: "reddit", Params: map[string]string{"ad_account_id": "t2_a1b2c3", "access_token": "rdt-token"}},
			func() *record.Postback {
				c := fixture("reddit", "rdt_cid", "4875629185693457012")
				c.Order.Event, c.Order.HasAmount, c.Test = "signup", false, true
				return c
			}},
	},
	"posthog": {
		{"purchase, US cloud", Config{Preset: "posthog", Params: map[string]string{"api_key": "phc_4c2aYnP6xq"}},
			func() *record.Postback { return fixture("everflow", "_ef_transaction_id", efClick) }},
		{"lead, EU cloud", Config{Preset: "posthog", Params: map[string]string{"api_key": "phc_4c2aYnP6xq", "region": "eu"}},
			func() *record.Postback {
				c := fixture("everflow", "_ef_transaction_id", efClick)
				c.Order.Event, c.Order.HasAmount, c.Order.Coupon = "lead", false, ""
				return c
			}},
	},
	"plausible": {
		{"purchase", Config{Preset: "plausible", Params: map[string]string{"site": "shop.example.com"}},
			func() *record.Postback {
				c := fixture("meta", "fbclid", fixFbclid)
				c.Touchpoint.Referrer = "https://m.facebook.com/"
				return c
			}},
	},
	"matomo": {
		{"ecommerce order with items and token_auth", Config{Preset: "matomo", URL: "https://analytics.example.com",
			Params: map[string]string{"site_id": "3", "token_auth": "0a1b2c3d4e5f", "currency": "USD"}},
			func() *record.Postback {
				return withItems(fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa"))
			}},
		{"lead as a goal, no token", Config{Preset: "matomo", Params: map[string]string{"domain": "shop.matomo.cloud", "site_id": "3", "goal_lead": "7"}},
			func() *record.Postback {
				c := fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa")
				c.Order.Event, c.Order.HasAmount = "lead", false
				return c
			}},
	},
	"rewardful": {
		{"purchase of a referral", Config{Preset: "rewardful", Params: map[string]string{"api_secret": "rw_secret_9f8e7d"}},
			func() *record.Postback {
				return fixture("rewardful", "rewardful_referral", "d154e622-278a-4103-b191-5cbebae4047a")
			}},
	},
	"firstpromoter": {
		{"sale by a referral link", Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "fp_key_12ab", "account_id": "acc_7f3e"}},
			func() *record.Postback { return fixture("firstpromoter", "fpr", "jane-affiliate") }},
		{"rebill by tracking ID", Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "fp_key_12ab", "account_id": "acc_7f3e"}},
			func() *record.Postback {
				c := fixture("firstpromoter", "_fprom_tid", "8d0b4c5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
				c.Order.Event, c.Order.ID, c.Order.OriginalID = order.EventRebill, "in_1QCycleKw1WOEy4mkRenewal", "sub_1PzSubKw1WOEy4mkMonthly"
				return c
			}},
		{"refund", Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "fp_key_12ab", "account_id": "acc_7f3e"}},
			func() *record.Postback {
				c := fixture("firstpromoter", "fpr", "jane-affiliate")
				c.Order.Status = order.StatusRefunded
				return c
			}},
		{"cancellation", Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "fp_key_12ab", "account_id": "acc_7f3e"}},
			func() *record.Postback {
				c := fixture("firstpromoter", "fpr", "jane-affiliate")
				c.Order.Event, c.Order.ID, c.Order.Status, c.Order.HasAmount = order.EventCancel, "sub_1PzSubKw1WOEy4mkMonthly", order.StatusRejected, false
				return c
			}},
	},
	"tapfiliate": {
		{"purchase by referral code", Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "tap_key_55"}},
			func() *record.Postback { return fixture("tapfiliate", "ref", "nlmjdis") }},
		{"rebill by click ID with a commission type", Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "tap_key_55", "commission_type": "recurring"}},
			func() *record.Postback {
				c := fixture("tapfiliate", "tap_click", "cl_aBcDeFgH")
				c.Order.Event, c.Order.ID = order.EventRebill, "in_1QCycleKw1WOEy4mkRenewal"
				return c
			}},
	},
}

// googleAdsGoldenParams are a Google Ads account's values, with pairs of
// overrides; token_url is set by TestGolden to its token server.
func googleAdsGoldenParams(kv ...string) map[string]string {
	p := map[string]string{
		"customer_id": "123-456-7890", "conversion_action": "987654321", "developer_token": "dev-token-abc",
		"client_id": "1234.apps.googleusercontent.com", "client_secret": "gcs-secret", "refresh_token": "1//refresh",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	return p
}

// goldenTokenServer is an OAuth token endpoint that hands out one fixed
// access token, so that golden requests are stable.
func goldenTokenServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"ya29.golden-access-token","expires_in":3599,"token_type":"Bearer"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// formatRequest prints a request the way the golden files hold it: method
// and URL, headers sorted, a blank line, and the body (JSON indented).
func formatRequest(r record.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if len(r.Body) > 0 {
		b.WriteString("\n")
		var ind bytes.Buffer
		if json.Valid([]byte(r.Body)) && json.Indent(&ind, []byte(r.Body), "", "  ") == nil {
			b.Write(ind.Bytes())
		} else {
			b.WriteString(r.Body)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	// Every registered network preset has golden requests.
	for _, name := range PresetNames() {
		if name == "get" || name == "post" {
			continue
		}
		if _, ok := goldenCases[name]; !ok {
			t.Errorf("preset %s has no golden cases", name)
		}
	}
	for preset, cases := range goldenCases {
		t.Run(preset, func(t *testing.T) {
			var out strings.Builder
			for _, gc := range cases {
				cfg := gc.cfg
				if cfg.Now == nil {
					cfg.Now = fixNow
				}
				if cfg.Preset == "google_ads" {
					cfg.Params["token_url"] = goldenTokenServer(t)
				}
				d, err := New(cfg)
				if err != nil {
					t.Fatalf("%s: New: %v", gc.name, err)
				}
				c := gc.conv()
				if !d.Supports(c.Order.Event, c.Order.Status) {
					t.Errorf("%s: preset does not support %s/%s", gc.name, c.Order.Event, c.Order.Status)
				}
				r, err := d.Render(context.Background(), c)
				if err != nil {
					t.Fatalf("%s: Render: %v", gc.name, err)
				}
				if len(r.Body) > 0 && strings.Contains(r.Header.Get("Content-Type"), "json") && !json.Valid([]byte(r.Body)) {
					t.Errorf("%s: body is not valid JSON: %s", gc.name, r.Body)
				}
				fmt.Fprintf(&out, "### %s\n%s\n", gc.name, formatRequest(r))
			}
			path := filepath.Join("testdata", "golden", preset+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("%s differs from the golden file:\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}
