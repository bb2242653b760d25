package capture

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
	if n := testing.AllocsPerRun(100, func() { r.Has("page=2&sort=asc&utm_source=news") }); n != 0 {
		t.Errorf("Has allocates %v times on a query without click IDs", n)
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
	newID := func() string {
		random := make([]byte, batchRandomBytes+ownRandomBytes)
		_, _ = rand.Read(random)
		return newBatchID(time.Now(), random) + base64.RawURLEncoding.EncodeToString(random[batchRandomBytes:])
	}
	id := newID()
	v := s.Sign(id)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`).MatchString(v) {
		t.Fatalf("cookie value %q cannot ride as a Stripe client_reference_id", v)
	}
	if got, ok := s.Verify(v); !ok || got != id {
		t.Fatalf("Verify(own) = %q %v", got, ok)
	}
	tampered := []byte(v)
	tampered[3] ^= 1
	otherBatch := []byte(v)
	otherBatch[batchIDLen-1] ^= 1 // another batch, same own part
	for name, bad := range map[string]string{
		"other key":   other.Sign(newID()),
		"tampered id": string(tampered),
		"other batch": string(otherBatch),
		"truncated":   v[:len(v)-1],
		"unsigned":    id,
		"empty":       "",
	} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("%s cookie verified", name)
		}
	}
	// A value made before session IDs were batched still verifies.
	mac := hmac.New(sha256.New, []byte(strings.Repeat("k", 32)))
	mac.Write([]byte(macDomain + "AAAAAAAAAAAAAAAAAAAAAA"))
	old := "AAAAAAAAAAAAAAAAAAAAAA" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
	if got, ok := s.Verify(old); !ok || got != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Errorf("Verify(44-character value) = %q %v", got, ok)
	}
	if _, ok := other.Verify(old); ok {
		t.Error("a 44-character value verified under another key")
	}
	// Verify runs on every request that carries the cookie.
	if n := testing.AllocsPerRun(100, func() { s.Verify(v) }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a short key must be refused")
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
	if n := testing.AllocsPerRun(100, func() { CookieValue(h, "_pbsid") }); n != 0 {
		t.Errorf("CookieValue allocates %v times", n)
	}
}

func TestSessionsAddCapAndRepeat(t *testing.T) {
	st := openStore(t, true)
	ss := &Sessions{Store: st, MaxTouchpoints: 3, TTL: time.Hour}
	t0 := time.Now()
	for i, id := range []string{"a", "b", "c", "d", "c"} {
		tp := Touchpoint{Network: "n", ClickID: id, CapturedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: t0.Add(time.Hour)}
		if err := ss.Add("s1", []Touchpoint{tp}, ""); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := ss.Get("s1")
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
	if found, err := ss.Erase("s1"); err != nil || !found {
		t.Fatalf("erase: %v %v", found, err)
	}
	if _, err := ss.Get("s1"); err == nil {
		t.Fatal("erased session still readable")
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
