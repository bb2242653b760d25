package postback

import (
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// TestConfigEvents: a network's event list limits a plain template and
// widens a preset that reports only purchases by default.
func TestConfigEvents(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		event string
		want  bool
	}{
		{Config{URL: "https://n.example/p?c={click_id}"}, "lead", true},
		{Config{URL: "https://n.example/p?c={click_id}", Events: []string{"purchase"}}, "lead", false},
		{Config{URL: "https://n.example/p?c={click_id}", Events: []string{"purchase"}}, "purchase", true},
		{Config{Preset: "awin", Params: map[string]string{"merchant": "1"}}, "lead", false},
		{Config{Preset: "awin", Params: map[string]string{"merchant": "1"}, Events: []string{"purchase", "lead"}}, "lead", true},
	} {
		d, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Supports(tc.event, order.StatusApproved); got != tc.want {
			t.Errorf("%s events %v: Supports(%s) = %v", tc.cfg.Preset, tc.cfg.Events, tc.event, got)
		}
	}
}
