package capture

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

// rewardfulCookie is the rewardful.referral cookie as Rewardful's script
// writes it: its referral object as JSON, escaped.
func rewardfulCookie(id string) string {
	doc := `{"id":"` + id + `","created_at":"2026-11-30T10:00:00.000Z","affiliate":{"id":"aff-1","name":"Kim","token":"kim"},"coupon":null,"cookie":{"domain":"shop.test"}}`
	return "rewardful.referral=" + url.PathEscape(doc)
}

func cookieRecognizer(t *testing.T) *Recognizer {
	t.Helper()
	r, err := NewRecognizer([]Network{
		{Name: "rewardful", Cookies: Presets["rewardful"].Cookies, Window: time.Hour},
		{Name: "firstpromoter", Params: Presets["firstpromoter"].Params, Cookies: Presets["firstpromoter"].Cookies, Window: time.Hour},
		{Name: "impact", Params: []string{"irclickid"}, Window: time.Hour},
	}, 64)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func cookieHeader(cookies ...string) http.Header {
	return http.Header{"Cookie": {strings.Join(cookies, "; ")}}
}

func TestReadClickCookies(t *testing.T) {
	r := cookieRecognizer(t)
	const referral = "2b9d5d7a-41f1-4c5e-9a51-0e4c4a1f7b11"
	for _, tc := range []struct {
		name    string
		cookies []string
		hits    map[string]string // param -> click ID
		errs    int
	}{
		{"none", []string{"theme=dark"}, map[string]string{}, 0},
		{"rewardful escaped JSON", []string{"theme=dark", rewardfulCookie(referral)}, map[string]string{"rewardful.referral": referral}, 0},
		{"rewardful plain JSON", []string{`rewardful.referral={"id":"` + referral + `"}`}, map[string]string{"rewardful.referral": referral}, 0},
		{"firstpromoter tid", []string{"_fprom_tid=5c1a4e0e-07e5-4d0c-b8a8-1f3f0a3e9d21"}, map[string]string{"_fprom_tid": "5c1a4e0e-07e5-4d0c-b8a8-1f3f0a3e9d21"}, 0},
		{"both", []string{rewardfulCookie(referral), "_fprom_tid=tid-9"}, map[string]string{"rewardful.referral": referral, "_fprom_tid": "tid-9"}, 0},
		{"not JSON", []string{"rewardful.referral=2b9d5d7a"}, map[string]string{}, 1},
		{"no id", []string{`rewardful.referral={"coupon":null}`}, map[string]string{}, 1},
		{"id not a string", []string{`rewardful.referral={"id":42}`}, map[string]string{}, 1},
		{"too long for a click ID", []string{"_fprom_tid=" + strings.Repeat("a", 65)}, map[string]string{}, 1},
		{"too long to parse", []string{`rewardful.referral={"id":"x","pad":"` + strings.Repeat("a", maxClickCookie) + `"}`}, map[string]string{}, 1},
		{"not printable", []string{"_fprom_tid=a%00b"}, map[string]string{}, 1},
		{"empty", []string{"_fprom_tid="}, map[string]string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cookieHeader(tc.cookies...)
			l := r.ReadCookies(h)
			got := map[string]string{}
			for _, hit := range l.Hits {
				got[hit.Param] = hit.ClickID
			}
			if len(got) != len(tc.hits) || len(l.Errs) != tc.errs {
				t.Fatalf("hits %v errs %v; want %v and %d errors", got, l.Errs, tc.hits, tc.errs)
			}
			for k, v := range tc.hits {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if want := len(tc.hits) > 0 || tc.errs > 0; r.HasCookie(h) != want {
				t.Errorf("HasCookie = %v, want %v", !want, want)
			}
		})
	}
}

func TestHasCookieDoesNotAllocate(t *testing.T) {
	r := cookieRecognizer(t)
	h := cookieHeader("_ga=GA1.1.1197596843.1673515099", "theme=dark", "cart_id=9f8e7d6c")
	if n := testing.AllocsPerRun(100, func() { r.HasCookie(h) }); n != 0 {
		t.Errorf("HasCookie allocates %v times on cookies without click cookies", n)
	}
}

func TestClickCookieConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		nets []Network
		want string
	}{
		{"two networks, one cookie", []Network{
			{Name: "a", Cookies: []ClickCookie{{Name: "ref"}}},
			{Name: "b", Cookies: []ClickCookie{{Name: "ref"}}},
		}, `click cookie "ref" is claimed by networks a and b`},
		{"bad name", []Network{{Name: "a", Cookies: []ClickCookie{{Name: "a b"}}}}, "not a valid cookie name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRecognizer(tc.nets, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRecognizer: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSessionsMissing(t *testing.T) {
	st, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	s := &Sessions{Store: st}
	now := time.Now()
	tp := func(net, id string) record.Touchpoint {
		return record.Touchpoint{Network: net, Param: "p", ClickID: id, CapturedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	id, _, err := s.Capture(ctx, "", []record.Touchpoint{tp("rewardful", "r-1")}, "", now)
	if err != nil {
		t.Fatal(err)
	}
	missing, found, err := s.Missing(ctx, id, []record.Touchpoint{tp("rewardful", "r-1"), tp("rewardful", "r-2"), tp("firstpromoter", "r-1")}, now)
	if err != nil || !found {
		t.Fatalf("Missing: %v, found %v", err, found)
	}
	if len(missing) != 2 || missing[0].ClickID != "r-2" || missing[1].Network != "firstpromoter" {
		t.Errorf("missing %+v: want r-2 and firstpromoter's r-1", missing)
	}
	missing, found, err = s.Missing(ctx, "no-such-session-at-all", []record.Touchpoint{tp("rewardful", "r-1")}, now)
	if err != nil || found || len(missing) != 1 {
		t.Errorf("a gone session: %+v, found %v, %v; want every touchpoint", missing, found, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Missing(ctx, id, []record.Touchpoint{tp("rewardful", "r-1")}, now); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("a closed store: %v, want an error", err)
	}
}

func TestSeenClicks(t *testing.T) {
	s := NewSeenClicks(2)
	s.Add("s1", "rewardful", "r-1")
	if !s.Has("s1", "rewardful", "r-1") || s.Has("s2", "rewardful", "r-1") || s.Has("s1", "rewardful", "r-2") {
		t.Fatal("Has answers for other sessions or clicks")
	}
	s.Add("s1", "rewardful", "r-2")
	s.Add("s1", "rewardful", "r-3") // the first generation is full: it becomes the old one
	if !s.Has("s1", "rewardful", "r-1") || !s.Has("s1", "rewardful", "r-3") {
		t.Fatal("the older generation is still remembered")
	}
	s.Add("s1", "rewardful", "r-4")
	s.Add("s1", "rewardful", "r-5") // and now it is forgotten
	if s.Has("s1", "rewardful", "r-1") {
		t.Error("memory grows past two generations")
	}
	if !s.Has("s1", "rewardful", "r-5") {
		t.Error("the newest click is forgotten")
	}
}
