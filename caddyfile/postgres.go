package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parsePostgres parses the postgres storage engine's options.
func parsePostgres(d *caddyfile.Dispenser, args []string) (any, error) {
	return nil, d.Err("storage postgres: not available in this build")
}
