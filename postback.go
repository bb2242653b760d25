// Package postback is caddy-postback: a Caddy module that captures affiliate
// and ad click IDs at the edge, notices conversions on confirmation pages and
// in signed webhooks, and fires server-to-server postbacks from a durable
// outbox. Importing it registers the modules and the Caddyfile directive, so
//
//	xcaddy build --with github.com/caddy-postback/caddy-postback
//
// builds a Caddy with it.
package postback

import (
	_ "github.com/caddy-postback/caddy-postback/caddyfile"
	_ "github.com/caddy-postback/caddy-postback/module"
)
