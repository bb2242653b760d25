package suggest

import "testing"

func TestNearest(t *testing.T) {
	presets := []string{"awin", "binom", "cj", "everflow", "get", "google_ads", "impact", "meta_capi", "post", "tiktok", "voluum"}
	tokens := []string{"click_id", "order_id", "amount", "amount_minor", "currency", "event", "status", "timestamp", "timestamp_ms"}
	for _, tc := range []struct {
		name  string
		known []string
		want  string // "" for no suggestion
	}{
		{"evreflow", presets, "everflow"}, // a swap is one edit
		{"everflw", presets, "everflow"},
		{"Everflow", presets, "everflow"}, // case is ignored
		{"evrflw", presets, "everflow"},
		{"meta", presets, "meta_capi"}, // the start of one name before '_'
		{"google", presets, "google_ads"},
		{"titkok", presets, "tiktok"},
		{"pots", presets, "post"},
		{"gett", presets, "get"},
		{"clickid", tokens, "click_id"},
		{"click", tokens, "click_id"},
		{"orderid", tokens, "order_id"},
		{"ammount", tokens, "amount"},
		{"timestmp", tokens, "timestamp"},
		{"facebook", presets, ""},
		{"clk", tokens, ""}, // too far from click_id, and not its start before a '_'
		{"x", presets, ""},
		{"", presets, ""},
		{"everflow", presets, ""},                                // known names need no suggestion
		{"amount", []string{"amount_minor", "amount_major"}, ""}, // two names start with it
	} {
		got, ok := Nearest(tc.name, tc.known)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Nearest(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	if got := DidYouMean("evreflow", []string{"everflow"}); got != " (did you mean `everflow`?)" {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := DidYouMean("zzz", []string{"everflow"}); got != "" {
		t.Errorf("DidYouMean of a far name = %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"abcd", "acbd", 1}, {"flaw", "lawn", 2},
	} {
		if got := distance(tc.a, tc.b); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
