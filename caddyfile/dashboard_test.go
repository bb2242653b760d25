package caddyfile_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

func dashboardSite(body string) string {
	return "example.com {\n\thandle /ops/* {\n\t\tpostback_dashboard {\n" + body + "\n\t\t}\n\t}\n}\n"
}

func TestDashboardCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		caddyfile string
		want      string
	}{
		{"argument", "example.com {\n\tpostback_dashboard /ops/* now #!\n}\n", "postback_dashboard takes no arguments"},
		{"unknown option", dashboardSite("allow_anonymous #!"), "unrecognized option 'allow_anonymous'"},
		{"repeated prefix", dashboardSite("prefix /ops\nprefix /x #!"), "prefix already specified"},
		{"relative prefix", dashboardSite("prefix ops #!"), `prefix "ops": want a path that starts with /`},
		{"prefix without value", dashboardSite("prefix #!"), "wrong argument count"},
		{"user not a placeholder", dashboardSite("user admin #!"), `user "admin": want the placeholder`},
		{"allow_unauthenticated with a value", dashboardSite("allow_unauthenticated yes #!"), "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := markedLine(t, tc.caddyfile)
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), nil)
			if err == nil {
				t.Fatalf("adapted without error:\n%s", tc.caddyfile)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !regexp.MustCompile(fmt.Sprintf(`\bCaddyfile:%d\b`, line)).MatchString(err.Error()) {
				t.Errorf("error %q does not name line Caddyfile:%d", err, line)
			}
		})
	}
}
