package caddyfile

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-postback/caddy-postback/module"
)

// parseStorage parses the storage option:
//
//	storage <dir>|:memory:
//	storage badger [<dir>|:memory:] {
//		min_free <size>
//		sync_writes
//		mem_table_size <size>
//	}
//	storage postgres <dsn> {
//		…
//	}
func parseStorage(d *caddyfile.Dispenser, warnings *[]caddyconfig.Warning) (json.RawMessage, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	switch args[0] {
	case "postgres":
		p, err := parsePostgres(d, args[1:])
		if err != nil {
			return nil, err
		}
		return caddyconfig.JSONModuleObject(p, "engine", "postgres", warnings), nil
	case "badger":
		args = args[1:]
	}
	if len(args) > 1 {
		return nil, d.ArgErr()
	}
	b := new(module.Badger)
	if len(args) == 1 {
		b.Dir = args[0]
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("storage %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "min_free":
			err = sizeArg(d, &b.MinFree, storageLimit)
		case "sync_writes":
			err = flag(d, &b.SyncWrites)
		case "mem_table_size":
			err = sizeArg(d, &b.MemTableSize, 1<<30)
		default:
			return nil, d.Errf("unrecognized badger storage option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return caddyconfig.JSONModuleObject(b, "engine", "badger", warnings), nil
}
