package caddyfile

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-postback/caddy-postback/module"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("postback_dashboard", parseDashboard)
	// Beside Caddy's metrics handler, which it is mounted like: among the
	// handlers that answer the request themselves, before reverse_proxy,
	// so that `handle /postback/* { basic_auth … postback_dashboard }`
	// needs no order line.
	httpcaddyfile.RegisterDirectiveOrder("postback_dashboard", httpcaddyfile.After, "metrics")
}

// parseDashboard parses the dashboard's site directive:
//
//	postback_dashboard [<matcher>] {
//		prefix <path>
//		user <placeholder>
//		allow_unauthenticated
//	}
func parseDashboard(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := h.Dispenser
	dash := new(module.Dashboard)
	d.Next()
	if d.NextArg() {
		return nil, d.Errf("postback_dashboard takes no arguments (its options go in a block: prefix, user, allow_unauthenticated)")
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("postback_dashboard: %s already specified", name)
		}
		seen[name] = true
		switch name {
		case "prefix":
			if err := oneArg(d, &dash.Prefix); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(dash.Prefix, "/") {
				return nil, d.Errf("postback_dashboard: prefix %q: want a path that starts with /", dash.Prefix)
			}
		case "user":
			if err := oneArg(d, &dash.User); err != nil {
				return nil, err
			}
			if !strings.Contains(dash.User, "{") {
				return nil, d.Errf("postback_dashboard: user %q: want the placeholder that holds the signed-in user, such as {http.request.header.Remote-User}", dash.User)
			}
		case "allow_unauthenticated":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			dash.AllowUnauthenticated = true
		default:
			return nil, d.Errf("postback_dashboard: unrecognized option '%s' (want prefix, user or allow_unauthenticated)", name)
		}
	}
	return dash, nil
}
