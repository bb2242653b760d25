package caddyfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddy-postback/caddy-postback/caddyfile"
)

// separator splits a .caddytest file into its Caddyfile and expected JSON.
const separator = "----------"

// readCaddytest returns the Caddyfile and the expected JSON of a golden file.
func readCaddytest(t *testing.T, path string) (caddyfile, json string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(data), separator)
	if len(parts) != 2 {
		t.Fatalf("%s: want one %q line between the Caddyfile and the JSON, found %d parts", path, separator, len(parts))
	}
	return strings.TrimSpace(parts[0]) + "\n", strings.TrimSpace(parts[1])
}

// TestCaddyfileAdaptToJSON adapts every testdata/adapt/*.caddytest and
// compares the result with the JSON below its separator line.
func TestCaddyfileAdaptToJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddytest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/adapt/*.caddytest files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			caddyfile, json := readCaddytest(t, path)
			if !caddytest.CompareAdapt(t, path, caddyfile, "caddyfile", json) {
				t.Errorf("adapting %s: result differs from the expected JSON (diff above)", path)
			}
		})
	}
}

// TestDemoGoldenIsExample keeps the demo golden file in step with the
// shipped examples/Caddyfile, so the demo the README runs is the one tested.
func TestDemoGoldenIsExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := readCaddytest(t, filepath.Join("testdata", "adapt", "demo.caddytest"))
	if strings.TrimSpace(string(example))+"\n" != golden {
		t.Error("testdata/adapt/demo.caddytest no longer holds examples/Caddyfile: copy it over and regenerate the JSON")
	}
}
