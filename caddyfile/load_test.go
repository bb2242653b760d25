package caddyfile_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLoadEmptyConfig adapts and really loads (provisions and starts) a
// Caddyfile that configures nothing: a bare `postback` global option and a
// bare `postback` site directive. The README promises the app works with
// no configuration; this proves the adapter's output for it is loadable.
func TestLoadEmptyConfig(t *testing.T) {
	dir := t.TempDir()
	// Caddy's data directory, where the store goes by default, and its
	// config directory: both private to this test.
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	port := freePort(t)
	src := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	grace_period 1ns
	storage file_system %s
	postback
}

http://127.0.0.1:%d {
	postback
	respond "plain page"
}
`, filepath.Join(dir, "certmagic"), port)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading %s: %v", cfg, err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/landing?clickid=abc123", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "plain page" {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, "plain page")
	}
	// No network is configured, so no parameter is a click ID: no cookie.
	if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("Set-Cookie %q with no network configured", c)
	}
	// The store opened at its default place, under Caddy's data directory.
	if _, err := os.Stat(filepath.Join(dir, "data", "caddy", "postback")); err != nil {
		t.Errorf("default store directory: %v", err)
	}
}
