package postback

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// TestMaskerBySecretValue renders real requests with a secret in every
// place a template can put one and checks that the masked copy shows it
// nowhere, in any encoding, while the request itself keeps it.
func TestMaskerBySecretValue(t *testing.T) {
	const secret = "s3cr3t/t0ken+v=1"
	cases := []struct {
		name string
		cfg  Config
	}{
		{"meta access token in the query", Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": secret}}},
		{"tiktok header", Config{Preset: "tiktok", Params: map[string]string{"pixel_code": "C", "access_token": secret}}},
		{"keitaro key in the path", Config{Preset: "keitaro", URL: "https://k.example.com", Params: map[string]string{"key": secret}}},
		{"form body field", Config{Preset: "post", URL: "https://n.example.com/pb", Body: "cid={click_id}&pass=" + secret}},
		{"json body field", Config{Preset: "post", URL: "https://n.example.com/pb", Body: `{"cid":"{click_id}","k":"` + strings.ReplaceAll(secret, "/", `\/`) + `"}`, BodyType: "json"}},
		{"path segment", Config{URL: "https://n.example.com/" + url.PathEscape(secret) + "/pb?cid={click_id}"}},
		{"bearer header", Config{URL: "https://n.example.com/pb?cid={click_id}", Headers: map[string]string{"Authorization": "Bearer " + secret}}},
		{"custom header", Config{URL: "https://n.example.com/pb?cid={click_id}", Headers: map[string]string{"X-Account": secret}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Now = fixNow
			d, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := d.Render(context.Background(), fixture("generic", "clickid", "abc"))
			if err != nil {
				t.Fatal(err)
			}
			all := func(r2 string) bool {
				return strings.Contains(r2, secret) || strings.Contains(r2, url.QueryEscape(secret)) || strings.Contains(r2, url.PathEscape(secret))
			}
			raw := r.URL + r.Body + strings.Join(flatten(r.Header), "\n")
			if !all(raw) && !strings.Contains(raw, `s3cr3t\/t0ken+v=1`) {
				t.Fatalf("the rendered request does not carry the secret: %s", raw)
			}
			m := NewMasker(append(Secrets(tc.cfg), secret)...)
			masked := m.Request(r)
			out := masked.URL + masked.Body + strings.Join(flatten(masked.Header), "\n")
			if all(out) || strings.Contains(out, `s3cr3t\/t0ken`) || strings.Contains(out, "s3cr3t") {
				t.Errorf("masked request still shows the secret:\n%s", out)
			}
			if !strings.Contains(out, Masked) {
				t.Errorf("masked request shows no %s:\n%s", Masked, out)
			}
			if !all(r.URL+r.Body+strings.Join(flatten(r.Header), "\n")) && !strings.Contains(r.Body, `s3cr3t\/t0ken`) {
				t.Error("masking changed the request itself")
			}
		})
	}
}

func flatten(h map[string][]string) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}

func TestMaskerStrings(t *testing.T) {
	m := NewMasker("tok-123456", "")
	for _, tc := range []struct{ in, want string }{
		{`Get "https://n.example.com/pb?k=tok-123456": context deadline exceeded`, `Get "https://n.example.com/pb?k=REDACTED": context deadline exceeded`},
		{"echo: dG9rLTEyMzQ1Ng==", "echo: REDACTED"},
		{"nothing here", "nothing here"},
	} {
		if got := m.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var none *Masker
	if none.String("tok-123456") != "tok-123456" {
		t.Error("a nil masker changed a string")
	}
	if got := none.Request(fixtureRequest()).URL; got != "https://n.example.com/?access_token=REDACTED&x=1" {
		t.Errorf("a nil masker did not mask by name: %s", got)
	}
}

func fixtureRequest() (r record.Request) {
	r.URL = "https://n.example.com/?access_token=abc&x=1"
	return r
}

// TestNewPresetsMaskSecrets renders each new preset's request with its
// secrets and checks that the stored copy shows none of them, nor the
// access token a token refresh obtained.
func TestNewPresetsMaskSecrets(t *testing.T) {
	tok := newTokenStub(t)
	tok.body = `{"access_token":"ya29.secret-access-token","expires_in":3600}`
	uuidClick := "d154e622-278a-4103-b191-5cbebae4047a"
	for _, tc := range []struct {
		cfg    Config
		param  string
		shown  string // the secret the rendered request carries
		hidden []string
	}{
		{Config{Preset: "google_ads", Params: googleAdsGoldenParams("token_url", tok.srv.URL, "developer_token", "dev-SECRET-1")},
			"gclid", "dev-SECRET-1", []string{"ya29.secret-access-token"}},
		{Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "ms-SECRET-2"}}, "msclkid", "ms-SECRET-2", nil},
		{Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "pin-SECRET-3"}}, "epik", "pin-SECRET-3", nil},
		{Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "snap-SECRET-4/+="}}, "ScCid", "snap-SECRET-4/+=", nil},
		{Config{Preset: "reddit", Params: map[string]string{"ad_account_id": "a", "access_token": "rdt-SECRET-5"}}, "rdt_cid", "rdt-SECRET-5", nil},
		{Config{Preset: "posthog", Params: map[string]string{"api_key": "phc_SECRET-6"}}, "x", "phc_SECRET-6", nil},
		{Config{Preset: "matomo", URL: "https://m.example.com", Params: map[string]string{"site_id": "1", "token_auth": "mt-SECRET-7"}}, "x", "mt-SECRET-7", nil},
		{Config{Preset: "rewardful", Params: map[string]string{"api_secret": "rw-SECRET-8"}}, "x", "rw-SECRET-8", nil},
		{Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "fp-SECRET-9", "account_id": "acc"}}, "fpr", "fp-SECRET-9", nil},
		{Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "tap-SECRET-10"}}, "ref", "tap-SECRET-10", nil},
	} {
		t.Run(tc.cfg.Preset, func(t *testing.T) {
			d := mustNew(t, tc.cfg)
			r, err := d.Render(context.Background(), fixture(tc.cfg.Preset, tc.param, uuidClick))
			if err != nil {
				t.Fatal(err)
			}
			raw := r.URL + r.Body + strings.Join(flatten(r.Header), "\n")
			if !strings.Contains(raw, tc.shown) && !strings.Contains(raw, url.QueryEscape(tc.shown)) &&
				!strings.Contains(raw, base64.StdEncoding.EncodeToString([]byte(tc.shown+":"))) {
				t.Fatalf("the request does not carry the secret: %s", raw)
			}
			masked := NewMasker(Secrets(tc.cfg)...).Request(r)
			out := masked.URL + masked.Body + strings.Join(flatten(masked.Header), "\n")
			for _, s := range append(tc.hidden, tc.shown, url.QueryEscape(tc.shown)) {
				if strings.Contains(out, s) {
					t.Errorf("stored request shows %q:\n%s", s, out)
				}
			}
			for k, v := range tc.cfg.Params {
				if slices.Contains(presetParams[tc.cfg.Preset].secrets, k) && !slices.Contains(Secrets(tc.cfg), v) {
					t.Errorf("secret param %s is not among Secrets", k)
				}
			}
		})
	}
}
