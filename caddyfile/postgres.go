package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-postback/caddy-postback/internal/suggest"
	"github.com/caddy-postback/caddy-postback/module"
)

// postgresOptions are the options of the postgres engine's block.
var postgresOptions = []string{"schema", "max_conns", "statement_timeout", "connect_timeout"}

// parsePostgres parses the postgres storage engine:
//
//	storage postgres <dsn> {
//		schema <name>
//		max_conns <n>
//		statement_timeout <duration>
//		connect_timeout <duration>
//	}
func parsePostgres(d *caddyfile.Dispenser, args []string) (*module.Postgres, error) {
	if len(args) != 1 {
		return nil, d.Errf("storage postgres: want one connection string, such as postgres://caddy:{env.PGPASSWORD}@db/tracker")
	}
	p := &module.Postgres{DSN: args[0]}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("storage %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "schema":
			err = oneArg(d, &p.Schema)
		case "max_conns":
			var n int
			err = intArg(d, &n)
			p.MaxConns = int32(n)
		case "statement_timeout":
			err = durationArg(d, &p.StatementTimeout)
		case "connect_timeout":
			err = durationArg(d, &p.ConnectTimeout)
		default:
			return nil, d.Errf("unrecognized postgres storage option '%s'%s", name, suggest.DidYouMean(name, postgresOptions))
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
