//go:build !race

// The race detector's instrumentation allocates, so allocation counts are
// checked only in builds without it.

package capture

import (
	"net/http"
	"strings"
	"testing"
)

// TestHotPathsAllocateNothing holds what runs on every request: the query
// check for click IDs, reading a cookie among others, and verifying one.
func TestHotPathsAllocateNothing(t *testing.T) {
	r := testRecognizer(t)
	s, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	v := s.Sign(NewSessionID())
	h := http.Header{"Cookie": {`a=1; _pbsid=XYZ; b="q"`, "c=3"}}
	for name, fn := range map[string]func(){
		"Has on a query without click IDs": func() { r.Has("page=2&sort=asc&utm_source=news") },
		"Verify":                           func() { s.Verify(v) },
		"CookieValue":                      func() { CookieValue(h, "_pbsid") },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}
