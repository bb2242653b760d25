package module_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// clickConsent is what GET /postback/clicks shows of a click's consent.
type clickConsent struct {
	AdUserData        string   `json:"ad_user_data"`
	AdPersonalization string   `json:"ad_personalization"`
	Purposes          []string `json:"purposes"`
}

// lookupClick returns the consent kept with a captured click, and whether
// the click was captured at all.
func lookupClick(t *testing.T, clickID string) (*clickConsent, bool) {
	t.Helper()
	status, b := adminDo(t, "GET", "/postback/clicks?click_id="+clickID, nil)
	var out []struct {
		Touchpoint struct {
			Network string        `json:"network"`
			Consent *clickConsent `json:"consent"`
		} `json:"touchpoint"`
	}
	if status != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("clicks: %d %s", status, b)
	}
	if len(out) == 0 {
		return nil, false
	}
	return out[0].Touchpoint.Consent, true
}

// TestConsentPerNetwork: each network captures only the clicks of
// visitors who granted what it requires (a CMP cookie's purpose, TCF
// purposes, a TCF vendor); the others are counted per network and get no
// postback; the consent found is kept with each click.
func TestConsentPerNetwork(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		consent {
			tcf
			purpose marketing cmp_consent "marketing:yes"
		}
		network aff {
			click_param affclid
			url "%s/aff?c={click_id}&o={order_id}"
			consent marketing
		}
		network ads {
			click_param adclid
			role platform
			url "%s/ads?c={click_id}&o={order_id}"
			consent 7 vendor:23
		}
		network strict {
			click_param stclid
			role platform
			url "%s/strict?c={click_id}&o={order_id}"
			consent 1 vendor:755
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
		}
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, net.URL, net.URL, httpPort, hostPort(up))
	mustLoad(t, cfg)
	refused := func() map[string]float64 {
		m := metricValues(t)
		out := map[string]float64{}
		for _, n := range []string{"aff", "ads", "strict"} {
			out[n] = m[`caddy_postback_clicks_without_consent_total{network="`+n+`"}`]
		}
		return out
	}
	before := refused()

	// A visitor whose CMP wrote only a TCF string: purposes 3 to 9 and
	// vendor 23 (an IAB example), no marketing cookie.
	v := visitor(t)
	v.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "euconsent-v2", Value: tcfPurposes3to9}})
	get(t, v, "/?affclid=AFF-TCF&adclid=ADS-TCF&stclid=ST-TCF")
	get(t, v, "/thank-you?order=C-1")

	// A visitor who accepted marketing in the CMP's own cookie, no TCF.
	w := visitor(t)
	w.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "cmp_consent", Value: "necessary:yes,marketing:yes"}})
	get(t, w, "/?affclid=AFF-CMP&adclid=ADS-CMP")
	get(t, w, "/thank-you?order=C-2")

	// A visitor who gave no consent at all gets no session cookie.
	x := visitor(t)
	resp, _ := get(t, x, "/?affclid=AFF-NONE&adclid=ADS-NONE")
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("Set-Cookie %q without consent", sc)
	}

	got := net.waitFor(t, 2, 10*time.Second)
	slices.Sort(got)
	if want := []string{"/ads?c=ADS-TCF&o=C-1", "/aff?c=AFF-CMP&o=C-2"}; !slices.Equal(got, want) {
		t.Fatalf("postbacks %q, want %q", got, want)
	}
	after := refused()
	for n, want := range map[string]float64{"aff": 2, "ads": 2, "strict": 1} {
		if d := after[n] - before[n]; d != want {
			t.Errorf("clicks_without_consent_total{network=%q} grew by %v, want %v", n, d, want)
		}
	}
	for _, id := range []string{"AFF-TCF", "ST-TCF", "ADS-CMP", "AFF-NONE", "ADS-NONE"} {
		if _, found := lookupClick(t, id); found {
			t.Errorf("click %s captured without its network's consent", id)
		}
	}
	c, found := lookupClick(t, "ADS-TCF")
	if !found || c == nil || c.AdUserData != "denied" || c.AdPersonalization != "granted" ||
		strings.Join(c.Purposes, ",") != "3,4,5,6,7,8,9" {
		t.Errorf("consent kept with ADS-TCF: %+v (found %v); want ad_user_data denied (no purpose 1), ad_personalization granted, purposes 3-9", c, found)
	}
	c, found = lookupClick(t, "AFF-CMP")
	if !found || c == nil || c.AdUserData != "" || strings.Join(c.Purposes, ",") != "marketing" {
		t.Errorf("consent kept with AFF-CMP: %+v (found %v); want the marketing purpose and no Google signal", c, found)
	}
}

// TestConsentIsALoadTimeCheck: a network that requires a purpose nobody
// defines, or a TCF purpose while TCF is off, does not load.
func TestConsentIsALoadTimeCheck(t *testing.T) {
	for _, tc := range []struct{ consent, network, want string }{
		{"", "consent marketing", "needs the consent"},
		{"purpose ads cc yes", "consent marketing", `no consent purpose named "marketing" (configured: ads)`},
		{"purpose ads cc yes", "consent 7", "tcf is not turned on"},
		{"tcf", "consent 25", "numbered 1 to 24"},
	} {
		block := ""
		if tc.consent != "" {
			block = "consent {\n" + tc.consent + "\n}"
		}
		cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		%s
		network aff {
			click_param clickid
			url "http://127.0.0.1:9/pb?c={click_id}"
			%s
		}
	}
}
`, globalHead(), t.TempDir(), block, tc.network)
		err := loadCaddyfile(cfg)
		if err == nil {
			t.Cleanup(func() { _ = caddy.Stop() })
			t.Fatalf("%q / %q loaded", tc.consent, tc.network)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q / %q: %v, want %q", tc.consent, tc.network, err, tc.want)
		}
	}
}
