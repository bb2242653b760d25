package postback

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files from the current output")

// goldenCase is one rendered request checked into testdata/golden.
type goldenCase struct {
	name string
	cfg  Config
	conv func() *record.Postback
}

const efClick = "102ab3c4d5e6f708192a3b4c5d6e7f80" // 32 characters, as Everflow's are

var goldenCases = map[string][]goldenCase{
	"everflow": {
		{"purchase", Config{Preset: "everflow", Params: map[string]string{"domain": "trk.example.com", "nid": "123"}},
			func() *record.Postback { return fixture("everflow", "_ef_transaction_id", efClick) }},
		{"lead with event id and token", Config{Preset: "everflow", URL: "https://MY_NETWORK_ID.servecvr.com",
			Params: map[string]string{"nid": "123", "event_id_lead": "7", "verification_token": "s3cr3t"}},
			func() *record.Postback {
				c := fixture("everflow", "transaction_id", efClick)
				c.Order.Event, c.Order.HasAmount, c.Order.Coupon = "lead", false, ""
				return c
			}},
	},
	"tune": {
		{"purchase", Config{Preset: "tune", URL: "https://examplenetwork.go2cloud.org", Params: map[string]string{"offer_id": "26"}},
			func() *record.Postback { return fixture("tune", "transaction_id", "1027c887059b47bc69c699f45466b9") }},
	},
	"voluum": {
		{"purchase", Config{Preset: "voluum", Params: map[string]string{"domain": "track.example.com"}},
			func() *record.Postback { return fixture("voluum", "clickid", "c384EFV6JHQODRN70575OK6UG5") }},
	},
	"binom": {
		{"pending purchase", Config{Preset: "binom", URL: "https://binom.example.com/"},
			func() *record.Postback {
				c := fixture("binom", "clickid", "e2f3he2tfe65a1")
				c.Order.Status = order.StatusPending
				return c
			}},
	},
	"keitaro": {
		{"approved sale", Config{Preset: "keitaro", Params: map[string]string{"domain": "kt.example.com", "key": "a1b2c3"}},
			func() *record.Postback { return fixture("keitaro", "subid", "3kf9a1b2c") }},
		{"pending as lead, with return", Config{Preset: "keitaro", Params: map[string]string{"domain": "kt.example.com", "key": "a1b2c3", "return": "OK"}},
			func() *record.Postback {
				c := fixture("keitaro", "subid", "3kf9a1b2c")
				c.Order.Status = order.StatusPending
				return c
			}},
		{"refund as rejected, full path url", Config{Preset: "keitaro", URL: "https://kt.example.com/a1b2c3/postback"},
			func() *record.Postback {
				c := fixture("keitaro", "subid", "3kf9a1b2c")
				c.Order.Status = order.StatusRefunded
				return c
			}},
	},
	"redtrack": {
		{"purchase", Config{Preset: "redtrack", Params: map[string]string{"domain": "rt.example.com"}},
			func() *record.Postback { return fixture("redtrack", "clickid", "64f0c2a1e7b9d3000123abcd") }},
	},
	"awin": {
		{"purchase", Config{Preset: "awin", Params: map[string]string{"merchant": "1001", "commission_group": "NEW"}},
			func() *record.Postback {
				return fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa")
			}},
		{"test fire, no coupon", Config{Preset: "awin", Params: map[string]string{"merchant": "1001"}},
			func() *record.Postback {
				c := fixture("awin", "awc", "1001_1403695822_a430d81e22c9e8687f423efcf024fbaa")
				c.Test, c.Order.Coupon = true, ""
				return c
			}},
	},
	"cj": {
		{"items", Config{Preset: "cj", Params: map[string]string{"cid": "1500000", "type": "400000"}},
			func() *record.Postback {
				return withItems(fixture("cj", "cjevent", "656e8fa049ec11ea8237023d0a240612"))
			}},
		{"order total", Config{Preset: "cj", Params: map[string]string{"cid": "1500000", "type": "400000"}},
			func() *record.Postback { return fixture("cj", "cjevent", "656e8fa049ec11ea8237023d0a240612") }},
	},
	"impact": {
		{"items", Config{Preset: "impact", Params: map[string]string{
			"account_sid": "IRabc123", "auth_token": "tok", "campaign_id": "1000", "event_type_id": "4000"}},
			func() *record.Postback {
				return withItems(fixture("impact", "irclickid", "SKhRQaSXwxyOUQ:wUx0Mo36FUkiXxtxVUQTEzY0"))
			}},
		{"order total by event code", Config{Preset: "impact", Params: map[string]string{
			"account_sid": "IRabc123", "auth_token": "tok", "campaign_id": "1000", "event_type_code": "SALE"}},
			func() *record.Postback {
				return fixture("impact", "irclickid", "SKhRQaSXwxyOUQ:wUx0Mo36FUkiXxtxVUQTEzY0")
			}},
	},
	"meta_capi": {
		{"purchase", Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1234567890", "access_token": "EAAB"}},
			func() *record.Postback { return fixture("meta", "fbclid", fixFbclid) }},
		{"signup, no amount, test fire", Config{Preset: "meta_capi", Params: map[string]string{
			"pixel_id": "1234567890", "access_token": "EAAB", "api_version": "v22.0", "test_event_code": "TEST123"}},
			func() *record.Postback {
				c := fixture("meta", "fbclid", fixFbclid)
				c.Order.Event, c.Order.HasAmount, c.Order.Email, c.Test = "signup", false, "", true
				return c
			}},
	},
	"ga4_mp": {
		{"purchase with items", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := withItems(fixture("google_ads", "gclid", "EAIaIQobChMI"))
				c.GAClientID = "1197596843.1673515099"
				return c
			}},
		{"refund", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.GAClientID = "1197596843.1673515099"
				c.Order.Status, c.Order.Coupon = order.StatusRefunded, ""
				return c
			}},
		{"lead, synthesized client id, test fire", Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G-ABC123", "api_secret": "sec"}},
			func() *record.Postback {
				c := fixture("google_ads", "gclid", "EAIaIQobChMI")
				c.Order.Event, c.Order.HasAmount, c.Order.Coupon, c.Test = "lead", false, "", true
				return c
			}},
	},
	"tiktok": {
		{"purchase", Config{Preset: "tiktok", Params: map[string]string{"pixel_code": "C4ABCDEFGH", "access_token": "tt-token"}},
			func() *record.Postback { return withItems(fixture("tiktok", "ttclid", "E.C.P.abcDEF123")) }},
	},
}

// formatRequest prints a request the way the golden files hold it: method
// and URL, headers sorted, a blank line, and the body (JSON indented).
func formatRequest(r record.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if len(r.Body) > 0 {
		b.WriteString("\n")
		var ind bytes.Buffer
		if json.Valid([]byte(r.Body)) && json.Indent(&ind, []byte(r.Body), "", "  ") == nil {
			b.Write(ind.Bytes())
		} else {
			b.WriteString(r.Body)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	// Every registered network preset has golden requests.
	for _, name := range PresetNames() {
		if name == "get" || name == "post" {
			continue
		}
		if _, ok := goldenCases[name]; !ok {
			t.Errorf("preset %s has no golden cases", name)
		}
	}
	for preset, cases := range goldenCases {
		t.Run(preset, func(t *testing.T) {
			var out strings.Builder
			for _, gc := range cases {
				d, err := New(gc.cfg)
				if err != nil {
					t.Fatalf("%s: New: %v", gc.name, err)
				}
				c := gc.conv()
				if !d.Supports(c.Order.Event, c.Order.Status) {
					t.Errorf("%s: preset does not support %s/%s", gc.name, c.Order.Event, c.Order.Status)
				}
				r, err := d.Render(context.Background(), c)
				if err != nil {
					t.Fatalf("%s: Render: %v", gc.name, err)
				}
				if len(r.Body) > 0 && strings.Contains(r.Header.Get("Content-Type"), "json") && !json.Valid([]byte(r.Body)) {
					t.Errorf("%s: body is not valid JSON: %s", gc.name, r.Body)
				}
				fmt.Fprintf(&out, "### %s\n%s\n", gc.name, formatRequest(r))
			}
			path := filepath.Join("testdata", "golden", preset+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("%s differs from the golden file:\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}
