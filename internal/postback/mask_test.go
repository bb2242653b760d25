package postback

import (
	"context"
	"net/url"
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
