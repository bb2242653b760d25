package capture

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-postback/caddy-postback/internal/record"
	badgerstore "github.com/caddy-postback/caddy-postback/internal/store/badger"
)

func testRecognizer(t *testing.T) *Recognizer {
	t.Helper()
	r, err := NewRecognizer([]Network{
		{Name: "impact", Params: []string{"irclickid"}, Window: time.Hour},
		{Name: "everflow", Params: []string{"_ef_transaction_id", "transaction_id"}, Window: time.Hour},
		{Name: "meta", Params: []string{"fbclid"}, Window: time.Hour, Role: "platform"},
	}, 64)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecognizerHas(t *testing.T) {
	r := testRecognizer(t)
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"", false},
		{"page=2&sort=asc", false},
		{"irclickid=abc", true},
		{"a=1&fbclid=IwAR2F4-dbP0", true},
		{"IRCLICKID=abc", false}, // parameter names are case-sensitive
		{"x=irclickid", false},
		{"%69rclickid=abc", true}, // an escaped name still counts
	} {
		if got := r.Has(tc.q); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestRecognizerFind(t *testing.T) {
	r := testRecognizer(t)
	q, _ := url.ParseQuery("irclickid=Abc-123_x&fbclid=" + strings.Repeat("a", 65) + "&transaction_id=t2&_ef_transaction_id=t1")
	hits, errs := r.Find(q)
	got := map[string]string{}
	for _, h := range hits {
		got[r.Networks()[h.Network].Name] = h.ClickID
	}
	if got["impact"] != "Abc-123_x" {
		t.Errorf("impact click = %q (case and punctuation must be kept)", got["impact"])
	}
	if got["everflow"] != "t1" {
		t.Errorf("everflow click = %q, want the first-listed parameter's value t1", got["everflow"])
	}
	if _, ok := got["meta"]; ok || len(errs) != 1 {
		t.Errorf("an oversized fbclid must be rejected with an error: hits %v errs %v", got, errs)
	}
}

// TestRecognizerRead checks the one-pass scan of a landing query against
// the parsed query it stands in for: Find on url.ParseQuery for click IDs,
// and the first value (Values.Get) of each sub parameter.
func TestRecognizerRead(t *testing.T) {
	r := testRecognizer(t)
	for _, q := range []string{
		"",
		"irclickid=Abc-123_x&utm_source=partner&sub1=spring",
		"irclickid=first&irclickid=second",                    // the last value of a parameter counts
		"transaction_id=t2&_ef_transaction_id=t1",             // the network's first-listed parameter wins
		"fbclid=" + strings.Repeat("a", 65) + "&irclickid=ok", // one bad, one good
		"fbclid=bad%20space&sub2=x",
		"%69rclickid=escaped%2Dvalue&utm_%73ource=a+b",        // escaped names and values
		"irclickid=a;b&sub1=c",                                // a ';' drops the pair, as ParseQuery does
		"irclickid=%zz&sub1=%zz&sub1=second",                  // bad escapes drop the pair
		"sub1=&sub1=later",                                    // Get's first value is empty: no sub
		"sub1=" + strings.Repeat("s", 65) + "&utm_term=t",     // an oversized sub ID is not kept
		"&&=x&irclickid&sub3=three&irclickid=",                // empty pairs, keys without values
		"utm_source=a&utm_source=b&utm_medium=m&irclickid=id", // first sub value wins
	} {
		parsed, _ := url.ParseQuery(q)
		wantHits, wantErrs := r.Find(parsed)
		wantSubs := map[string]string{}
		for _, p := range record.SubParams {
			if v := parsed.Get(p); v != "" && ValidClickID(v, 64) == nil {
				wantSubs[p] = v
			}
		}
		got := r.Read(q)
		if !sameHits(got.Hits, wantHits) {
			t.Errorf("Read(%q) hits = %v, want %v", q, got.Hits, wantHits)
		}
		if len(got.Errs) != len(wantErrs) {
			t.Errorf("Read(%q) errors = %v, want %v", q, got.Errs, wantErrs)
		}
		if len(got.Subs) != len(wantSubs) {
			t.Errorf("Read(%q) subs = %v, want %v", q, got.Subs, wantSubs)
		}
		for k, v := range wantSubs {
			if got.Subs[k] != v {
				t.Errorf("Read(%q) sub %s = %q, want %q", q, k, got.Subs[k], v)
			}
		}
	}
}

func sameHits(a, b []Hit) bool {
	key := func(hs []Hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, fmt.Sprint(h))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func TestDuplicateParamIsAConfigError(t *testing.T) {
	_, err := NewRecognizer([]Network{{Name: "a", Params: []string{"clickid"}}, {Name: "b", Params: []string{"clickid"}}}, 0)
	if err == nil || !strings.Contains(err.Error(), "clickid") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidClickID(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"abc123", true},
		{"IwAR2F4-dbP0l7Mn1IawQQ_x", true},
		{"SKhRQaSXwxyOUQ:wUx0Mo36", true},
		{"", false},
		{"has space", false},
		{"tab\there", false},
		{"nul\x00", false},
		{"caf\xc3\xa9", false},
		{strings.Repeat("x", 65), false},
	} {
		if err := ValidClickID(tc.v, 64); (err == nil) != tc.ok {
			t.Errorf("ValidClickID(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestCookieSignVerify(t *testing.T) {
	s, err := NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner([]byte(strings.Repeat("o", 32)))
	id := NewSessionID()
	if len(id) != 22 || id == NewSessionID() {
		t.Fatalf("session ID %q", id)
	}
	v := s.Sign(id)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`).MatchString(v) {
		t.Fatalf("cookie value %q cannot ride as a Stripe client_reference_id", v)
	}
	if got, ok := s.Verify(v); !ok || got != id {
		t.Fatalf("Verify(own) = %q %v", got, ok)
	}
	tampered := []byte(v)
	tampered[3] ^= 1
	for name, bad := range map[string]string{
		"other key":   other.Sign(NewSessionID()),
		"tampered id": string(tampered),
		"truncated":   v[:len(v)-1],
		"extended":    v + "A",
		"unsigned":    id,
		"empty":       "",
	} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("%s cookie verified", name)
		}
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a short key must be refused")
	}
}

func TestVerifiedSessionAmongSeveralCookies(t *testing.T) {
	s, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	other, _ := NewSigner([]byte(strings.Repeat("o", 32)))
	id := NewSessionID()
	valid := s.Sign(id)
	forged := other.Sign(NewSessionID())
	for _, tc := range []struct {
		name   string
		header []string
		want   string
	}{
		{"bogus then valid", []string{"_pbsid=bogus; _pbsid=" + valid}, id},
		{"valid then bogus", []string{"_pbsid=" + valid + "; _pbsid=bogus"}, id},
		{"forged then valid, two lines", []string{"_pbsid=" + forged, "x=1; _pbsid=" + valid}, id},
		{"forged only", []string{"_pbsid=" + forged}, ""},
		{"none", []string{"a=1"}, ""},
	} {
		got, value, ok := s.VerifiedSession(http.Header{"Cookie": tc.header}, "_pbsid")
		if got != tc.want || ok != (tc.want != "") || (ok && value != valid) {
			t.Errorf("%s: VerifiedSession = %q %q %v, want %q", tc.name, got, value, ok, tc.want)
		}
	}
}

func TestCookieValue(t *testing.T) {
	h := http.Header{"Cookie": {`a=1; _pbsid=XYZ; b="q"`, "c=3"}}
	if got := CookieValue(h, "_pbsid"); got != "XYZ" {
		t.Errorf("got %q", got)
	}
	if got := CookieValue(h, "b"); got != "q" {
		t.Errorf("quoted: got %q", got)
	}
	if got := CookieValue(h, "missing"); got != "" {
		t.Errorf("missing: got %q", got)
	}
}

func TestSessionsCapture(t *testing.T) {
	st, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	ss := &Sessions{Store: st, MaxTouchpoints: 3}
	t0 := time.Now()
	tp := func(click string, at time.Time) []record.Touchpoint {
		return []record.Touchpoint{{Network: "n", ClickID: click, CapturedAt: at, ExpiresAt: at.Add(time.Hour)}}
	}
	id, isNew, err := ss.Capture(ctx, "", tp("a", t0), "", t0)
	if err != nil || !isNew || len(id) != 22 {
		t.Fatalf("first click: %q %v %v", id, isNew, err)
	}
	for i, click := range []string{"b", "c", "d", "c"} {
		at := t0.Add(time.Duration(i+1) * time.Second)
		got, isNew, err := ss.Capture(ctx, id, tp(click, at), "", at)
		if err != nil || isNew || got != id {
			t.Fatalf("click %s: %q %v %v", click, got, isNew, err)
		}
	}
	sess, err := st.Session(ctx, id, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tp := range sess.Touchpoints {
		ids = append(ids, tp.ClickID)
	}
	// Capped at 3, oldest dropped; the repeated "c" moved to the end.
	if strings.Join(ids, ",") != "b,d,c" {
		t.Fatalf("touchpoints = %v, want b,d,c", ids)
	}
	// An expired session is not revived: the click starts a new one.
	late := t0.Add(2 * time.Hour)
	got, isNew, err := ss.Capture(ctx, id, tp("e", late), "", late)
	if err != nil || !isNew || got == id {
		t.Fatalf("click on an expired session: %q %v %v", got, isNew, err)
	}
	// So is an erased one.
	if _, err := st.EraseSession(ctx, got, late, late); err != nil {
		t.Fatal(err)
	}
	again, isNew, err := ss.Capture(ctx, got, tp("f", late), "", late)
	if err != nil || !isNew || again == got {
		t.Fatalf("click on an erased session: %q %v %v", again, isNew, err)
	}
}

func TestTouchpointsAreCapped(t *testing.T) {
	r := testRecognizer(t)
	l := r.Read("irclickid=abc")
	tps := r.NewTouchpoints(l, Landed{At: time.Now(), LandingURL: strings.Repeat("u", 10000),
		Referrer: strings.Repeat("r", 5000), UserAgent: strings.Repeat("é", 1000)})
	if len(tps) != 1 {
		t.Fatalf("touchpoints %v", tps)
	}
	tp := tps[0]
	if len(tp.LandingURL) != MaxLandingURL || len(tp.Referrer) != MaxReferrer || len(tp.UserAgent) > MaxUserAgent || !utf8.ValidString(tp.UserAgent) {
		t.Fatalf("caps: landing %d, referrer %d, user agent %d", len(tp.LandingURL), len(tp.Referrer), len(tp.UserAgent))
	}
}

func TestTruncateIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":          "203.0.113.0",
		"2001:db8:abcd:1234::1": "2001:db8:abcd::",
		"not an ip":             "",
	} {
		if got := TruncateIP(in); got != want {
			t.Errorf("TruncateIP(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClickIDKeepsPlus: a standard-base64 click ID put into the landing URL
// unescaped keeps its '+' (a space is never part of a click ID), and its
// escaped form reads the same.
func TestClickIDKeepsPlus(t *testing.T) {
	r := testRecognizer(t)
	for _, q := range []string{"irclickid=ab+c/d==", "irclickid=ab%2Bc%2Fd%3D%3D", "x=1&irclickid=ab+c/d==&sub1=a+b"} {
		l := r.Read(q)
		if len(l.Hits) != 1 || l.Hits[0].ClickID != "ab+c/d==" {
			t.Errorf("Read(%q) = %+v, want the click ID ab+c/d==", q, l.Hits)
		}
	}
}
