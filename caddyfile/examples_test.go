package caddyfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestExamplesAdapt adapts every shipped Caddyfile that no other test
// loads: the cluster's node and load balancer. (The demo and the recipes
// are loaded by the module's tests.)
func TestExamplesAdapt(t *testing.T) {
	t.Setenv("SHOP", "shop:80")
	for _, name := range []string{"cluster/Caddyfile", "cluster/lb.Caddyfile"} {
		src, err := os.ReadFile(filepath.Join("..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": name}); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if len(warnings) > 0 {
			t.Errorf("%s: warnings %v", name, warnings)
		}
	}
}
