package module

import (
	"net/http"
	"testing"
)

func TestGAClientID(t *testing.T) {
	for _, tc := range []struct{ cookie, want string }{
		{"_ga=GA1.1.1197596843.1673515099", "1197596843.1673515099"},
		{"theme=dark; _ga=GA1.2.42.1700000000; x=1", "42.1700000000"},
		{"_ga=GA1.1.1197596843", ""}, // too few parts
		{"_ga=", ""},
		{"other=GA1.1.1.2", ""},
		{"", ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://shop.test/", nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", tc.cookie)
		}
		if got := gaClientID(r); got != tc.want {
			t.Errorf("gaClientID(%q) = %q, want %q", tc.cookie, got, tc.want)
		}
	}
}
