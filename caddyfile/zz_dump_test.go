package caddyfile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

func TestZZDump(t *testing.T) {
	f := os.Getenv("DUMP")
	if f == "" {
		t.Skip()
	}
	src, _ := os.ReadFile(f)
	out, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warn {
		fmt.Fprintln(os.Stderr, "WARN", w)
	}
	var b bytes.Buffer
	json.Indent(&b, out, "", "\t")
	os.WriteFile(os.Getenv("OUT"), b.Bytes(), 0o644)
}
