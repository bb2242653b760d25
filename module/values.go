package module

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// provisionValues checks the per-offer values of a conversion rule,
// webhook or endpoint (what names it in errors) and replaces their {env.*}
// placeholders; request placeholders ({http.request.uri.query.offer}) are
// replaced per request (requestValues).
func provisionValues(what string, vals map[string]string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	env := &envExpander{}
	out := make(map[string]string, len(vals))
	for _, name := range sortedKeys(vals) {
		if !order.ValidValueName(name) {
			return nil, fmt.Errorf("%s: value name %q: use letters, digits and '_' (the template token is {value.<name>})", what, name)
		}
		v, err := env.expand(fmt.Sprintf("%s: value %s", what, name), vals[name])
		if err != nil {
			return nil, err
		}
		if !strings.Contains(v, "{") {
			if err := order.CheckValue(v); err != nil {
				return nil, fmt.Errorf("%s: value %s: %w", what, name, err)
			}
		}
		out[name] = v
	}
	return out, nil
}

// requestValues returns the per-offer values for an order seen in r, with
// r's placeholders replaced. A value that comes out empty is left out (its
// token renders empty either way); one that is too long or holds control
// characters once replaced is left out and reported.
func requestValues(r *http.Request, vals map[string]string) (map[string]string, []string) {
	if len(vals) == 0 {
		return nil, nil
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	out := make(map[string]string, len(vals))
	var problems []string
	for name, v := range vals {
		if repl != nil && strings.Contains(v, "{") {
			v = strings.TrimSpace(repl.ReplaceAll(v, ""))
			if err := order.CheckValue(v); err != nil {
				problems = append(problems, fmt.Sprintf("value %s left out: %v", name, err))
				continue
			}
		}
		if v != "" {
			out[name] = v
		}
	}
	return out, problems
}

// withValues returns o with the per-offer values set: those o carries
// already (from its source) win over the configured ones.
func withValues(o order.Order, vals map[string]string, problems []string) order.Order {
	if len(vals) > 0 {
		merged := maps.Clone(vals)
		maps.Copy(merged, o.Values)
		o.Values = merged
	}
	if len(problems) > 0 {
		o.Problems = append(slices.Clip(o.Problems), problems...)
	}
	return o
}
