package module

import (
	"net/http"
	"testing"
)

func TestMarkPrivate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string // Cache-Control values; nil: none
		want string
	}{
		{"none", nil, "private"},
		{"public with max-age", []string{"public, max-age=3600"}, "private, max-age=3600"},
		{"s-maxage", []string{"max-age=60, s-maxage=3600, must-revalidate"}, "private, max-age=60, must-revalidate"},
		{"upper case", []string{"Public, Max-Age=60, S-MAXAGE=600"}, "private, Max-Age=60"},
		{"already private", []string{"private, max-age=0"}, "private, max-age=0"},
		{"private naming a field", []string{`private="Set-Cookie", max-age=600`}, "private, max-age=600"},
		{"no-cache with a quoted list", []string{`public, no-cache="Set-Cookie, X-Foo", max-age=5`}, `private, no-cache="Set-Cookie, X-Foo", max-age=5`},
		{"no-store", []string{"no-store"}, "private, no-store"},
		{"several values", []string{"public", "max-age=30", "stale-while-revalidate=60"}, "private, max-age=30, stale-while-revalidate=60"},
		{"empty directives", []string{" , public,, immutable ,"}, "private, immutable"},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Cache-Control"] = tc.in
		}
		markPrivate(h)
		if got := h["Cache-Control"]; len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %q became %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestVaryCookie(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{"Cookie"}},
		{[]string{"Accept-Encoding"}, []string{"Accept-Encoding", "Cookie"}},
		{[]string{"accept-encoding, cookie"}, []string{"accept-encoding, cookie"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Vary"] = append([]string(nil), tc.in...)
		}
		varyCookie(h)
		if got := h["Vary"]; len(got) != len(tc.want) || got[len(got)-1] != tc.want[len(tc.want)-1] {
			t.Errorf("Vary %q became %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSetsCookie(t *testing.T) {
	h := http.Header{"Set-Cookie": {"_pbsidx=1", "other=_pbsid=2", "_pbsid"}}
	if setsCookie(h, "_pbsid") {
		t.Fatal("other cookies taken for the session cookie")
	}
	h.Add("Set-Cookie", "_pbsid=abc; Path=/; HttpOnly")
	if !setsCookie(h, "_pbsid") {
		t.Fatal("the session cookie not seen")
	}
}
