package caddyfile

import (
	"encoding/json"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-postback/caddy-postback/internal/suggest"
	"github.com/caddy-postback/caddy-postback/module"
)

// storageEngines are the engines the storage option names.
var storageEngines = []string{"badger", "postgres"}

// badgerOptions are the options of the badger engine's block.
var badgerOptions = []string{"min_free", "sync_writes", "mem_table_size"}

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
	default:
		if len(args) > 1 && !strings.ContainsAny(args[0], `/\:.`) {
			// Two words: an engine and its argument, with a name that is
			// not an engine's.
			return nil, d.Errf("storage: unknown engine '%s'%s; want badger or postgres, or a directory alone",
				args[0], suggest.DidYouMean(args[0], storageEngines))
		}
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
			return nil, d.Errf("unrecognized badger storage option '%s'%s", name, suggest.DidYouMean(name, badgerOptions))
		}
		if err != nil {
			return nil, err
		}
	}
	return caddyconfig.JSONModuleObject(b, "engine", "badger", warnings), nil
}
