//go:build !race

// The race detector's instrumentation allocates, so allocation counts are
// checked only in builds without it.

package module

import "testing"

// TestPassThroughAllocatesNothing holds the design's promise that a request
// with no click ID, no session cookie and no matching rule costs the module
// no allocation. It measures the handler with a next that allocates nothing
// itself.
func TestPassThroughAllocatesNothing(t *testing.T) {
	for name, env := range map[string]*benchEnv{
		"query click IDs":             newBenchEnv(t, thankYouRule()),
		"query click IDs and cookies": withClickCookies(t, newBenchEnv(t, thankYouRule())),
	} {
		w := newBenchWriter()
		r := passThroughRequest(w)
		allocs := testing.AllocsPerRun(1000, func() {
			w.reset()
			if err := env.h.ServeHTTP(w, r, benchNext); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%s: pass-through request: %v allocations per request, want 0", name, allocs)
		}
		if w.n != len(benchBody) || w.header.Get("Set-Cookie") != "" {
			t.Fatalf("%s: pass-through changed the response: %d bytes, header %v", name, w.n, w.header)
		}
	}
}
