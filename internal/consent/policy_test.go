package consent

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// IAB example strings (see tcf_test.go): purposes 1 and 2 only; purposes 3
// to 9 with vendors 23, 37, 47, 48, 53, 65 and 98.
const (
	tcfPurposes12   = "COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA"
	tcfPurposes3to9 = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
)

// cmpPolicy reads the TCF string and two CMPs' cookies: Cookiebot's
// CookieConsent (percent-encoded) and OneTrust's OptanonConsent groups.
func cmpPolicy(t *testing.T) *Policy {
	t.Helper()
	p := &Policy{
		TCFCookie: DefaultTCFCookie,
		Purposes: []Purpose{
			{Name: "marketing", Cookie: "CookieConsent", Match: regexp.MustCompile(`marketing:true`)},
			{Name: "marketing", Cookie: "OptanonConsent", Match: regexp.MustCompile(`groups=[^&]*C0004:1`)},
			{Name: "statistics", Cookie: "CookieConsent", Match: regexp.MustCompile(`statistics:true`)},
		},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func header(cookies ...string) http.Header {
	h := http.Header{}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	return h
}

func TestPolicyRequirements(t *testing.T) {
	p := cmpPolicy(t)
	cookiebotYes := "CookieConsent={stamp:%27x%27%2Cnecessary:true%2Cstatistics:false%2Cmarketing:true%2Cmethod:%27explicit%27}"
	cookiebotNo := "CookieConsent={stamp:%27x%27%2Cnecessary:true%2Cstatistics:true%2Cmarketing:false}"
	oneTrustYes := "OptanonConsent=isGpcEnabled=0&datestamp=Mon+Dec+01+2026&groups=C0001%3A1%2CC0002%3A0%2CC0004%3A1&geolocation=DE"
	for _, tc := range []struct {
		name    string
		cookies []string
		require []string
		missing []string
	}{
		{"nothing asked", nil, nil, nil},
		{"no cookie: no consent", nil, []string{"marketing"}, []string{"marketing"}},
		{"cookiebot grants", []string{cookiebotYes}, []string{"marketing"}, nil},
		{"cookiebot refuses", []string{cookiebotNo}, []string{"marketing", "statistics"}, []string{"marketing"}},
		{"onetrust grants the same name", []string{oneTrustYes}, []string{"marketing"}, nil},
		{"either CMP grants", []string{cookiebotNo, oneTrustYes}, []string{"marketing"}, nil},
		{"TCF purposes", []string{"euconsent-v2=" + tcfPurposes3to9}, []string{"3", "4", "7", "1"}, []string{"1"}},
		{"TCF vendor", []string{"euconsent-v2=" + tcfPurposes3to9}, []string{"vendor:23", "vendor:755"}, []string{"vendor:755"}},
		{"TCF cookie absent", nil, []string{"1"}, []string{"1"}},
		{"TCF cookie garbage", []string{"euconsent-v2=not-a-tc-string"}, []string{"1"}, []string{"1"}},
		{"mixed", []string{cookiebotYes, "euconsent-v2=" + tcfPurposes12}, []string{"marketing", "1", "2", "statistics"}, []string{"statistics"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Read(header(tc.cookies...)).Missing(tc.require)
			if !slices.Equal(got, tc.missing) {
				t.Errorf("missing %q, want %q", got, tc.missing)
			}
		})
	}
}

func TestGoogleSignalsFromTCF(t *testing.T) {
	p := cmpPolicy(t)
	for _, tc := range []struct {
		name            string
		cookies         []string
		userData, perso string
		purposes        []string
	}{
		// Purpose 1 alone: 7 (measurement) missing denies ad_user_data;
		// 3 and 4 missing deny ad_personalization.
		{"purposes 1 and 2", []string{"euconsent-v2=" + tcfPurposes12}, record.Denied, record.Denied, []string{"1", "2"}},
		// 3, 4 and 7 but not 1 (storage): ad_user_data denied.
		{"purposes 3 to 9", []string{"euconsent-v2=" + tcfPurposes3to9}, record.Denied, record.Granted, []string{"3", "4", "5", "6", "7", "8", "9"}},
		{"all purposes", []string{"euconsent-v2=" + allPurposes(t)}, record.Granted, record.Granted, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}},
		{"no TCF string: unknown", nil, "", "", nil},
		{"named purposes kept", []string{"CookieConsent=marketing:true,statistics:true"}, "", "", []string{"marketing", "statistics"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.Read(header(tc.cookies...)).Record()
			if c.AdUserData != tc.userData || c.AdPersonalization != tc.perso || !slices.Equal(c.Purposes, tc.purposes) {
				t.Errorf("consent %+v, want ad_user_data %q, ad_personalization %q, purposes %q", *c, tc.userData, tc.perso, tc.purposes)
			}
		})
	}
}

// allPurposes is a TC string granting purposes 1 to 11.
func allPurposes(t *testing.T) string {
	t.Helper()
	return buildCore(0x7ff, 0, false)
}

func TestGoogleSignalsFromNamedPurposes(t *testing.T) {
	p := &Policy{
		Purposes:          []Purpose{{Name: "ads", Cookie: "cc", Match: regexp.MustCompile(`^yes$`)}},
		AdUserData:        []string{"ads"},
		AdPersonalization: []string{"ads"},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for cookie, want := range map[string]string{"cc=yes": record.Granted, "cc=no": record.Denied, "other=1": ""} {
		if c := p.Read(header(cookie)).Record(); c.AdUserData != want || c.AdPersonalization != want {
			t.Errorf("%s: %+v, want %q", cookie, *c, want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	named := []Purpose{{Name: "ads", Cookie: "cc", Match: regexp.MustCompile(`yes`)}}
	for _, tc := range []struct {
		name string
		p    Policy
		want string
	}{
		{"TCF purpose without TCF", Policy{Purposes: named, Require: []string{"1"}}, "tcf is not turned on"},
		{"vendor without TCF", Policy{Purposes: named, Require: []string{"vendor:755"}}, "tcf is not turned on"},
		{"unknown name", Policy{Purposes: named, Require: []string{"advertising"}}, `no consent purpose named "advertising" (configured: ads)`},
		{"purpose out of range", Policy{TCFCookie: "euconsent-v2", Require: []string{"25"}}, "numbered 1 to 24"},
		{"bad vendor", Policy{TCFCookie: "euconsent-v2", Require: []string{"vendor:x"}}, "vendor:<id>"},
		{"numeric name", Policy{Purposes: []Purpose{{Name: "7", Cookie: "c", Match: regexp.MustCompile(`x`)}}}, "numbers are TCF purposes"},
		{"bad cookie name", Policy{Purposes: []Purpose{{Name: "ads", Cookie: "a b", Match: regexp.MustCompile(`x`)}}}, "not a valid cookie name"},
		{"google signal on unknown name", Policy{Purposes: named, AdUserData: []string{"marketing"}}, "ad_user_data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
