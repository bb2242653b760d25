// Command caddy is Caddy with the standard modules and caddy-postback.
package main

import (
	_ "time/tzdata" // for images without a zoneinfo database

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-postback/caddy-postback"
)

func main() { caddycmd.Main() }
