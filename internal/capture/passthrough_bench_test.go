package capture

import (
	"net/http"
	"testing"
	"time"
)

// The two checks every request goes through, on a request that carries
// neither a click ID nor a session cookie: the pass-through path.

func BenchmarkRecognizerHas(b *testing.B) {
	// Every preset's parameter names, each claimed once.
	var networks []Network
	claimed := map[string]bool{}
	for name, p := range Presets {
		n := Network{Name: name, Window: time.Hour}
		for _, param := range p.Params {
			if !claimed[param] {
				claimed[param] = true
				n.Params = append(n.Params, param)
			}
		}
		if len(n.Params) > 0 {
			networks = append(networks, n)
		}
	}
	r, err := NewRecognizer(networks, 0)
	if err != nil {
		b.Fatal(err)
	}
	const query = "utm_source=newsletter&utm_medium=email&page=2&sort=price"
	b.ReportAllocs()
	for b.Loop() {
		if r.Has(query) {
			b.Fatal("no click ID in the query")
		}
	}
}

func BenchmarkCookieValue(b *testing.B) {
	h := http.Header{"Cookie": {"_ga=GA1.1.1197596843.1673515099; theme=dark; cart_id=9f8e7d6c; cookie_consent=yes"}}
	b.ReportAllocs()
	for b.Loop() {
		if CookieValue(h, "_pbsid") != "" {
			b.Fatal("no session cookie in the header")
		}
	}
}
