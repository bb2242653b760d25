package module_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxBinary finds nginx. Without it the test fails under CI=true, where
// .ci/run installs it, and elsewhere skips, saying so loudly.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	const msg = "nginx not found: install the Debian package nginx"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	fmt.Fprintf(os.Stderr, "\n%s\n!!! %s: %s SKIPPED\n%s\n\n", strings.Repeat("!", 72), t.Name(), msg, strings.Repeat("!", 72))
	t.Skip(msg)
	return ""
}

// startNginx runs nginx as a shared cache (proxy_cache, default settings)
// in front of the test Caddy, on a free loopback port, with everything it
// writes in a temporary directory. It returns nginx's base URL.
func startNginx(t *testing.T) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// One process (no master), so that it runs as this user and a kill
	// leaves no workers behind.
	conf := fmt.Sprintf(`master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy_temp;
	fastcgi_temp_path %[1]s/fastcgi_temp;
	uwsgi_temp_path %[1]s/uwsgi_temp;
	scgi_temp_path %[1]s/scgi_temp;
	proxy_cache_path %[1]s/cache keys_zone=shop:1m;
	server {
		listen %[2]s;
		location / {
			proxy_pass http://127.0.0.1:%[3]d;
			proxy_http_version 1.1;
			proxy_cache shop;
			add_header X-Cache-Status $upstream_cache_status always;
		}
	}
}
`, dir, addr, httpPort)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/ready")
		if err == nil {
			resp.Body.Close()
			return base
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not answer on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getURL(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSharedCacheNeverServesADecoratedPage puts a real shared cache in
// front of Caddy: the shop marks its pricing page public for an hour, as
// shops do. Visitor A's page, decorated with A's reference, must never be
// served to visitor B from the cache (that would credit A's affiliate with
// B's order); the undecorated page that visitors without a session get is
// still cached.
func TestSharedCacheNeverServesADecoratedPage(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/pricing": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=3600")
			_, _ = io.WriteString(w, `<html><body><a href="https://buy.stripe.com/test_8wM8zHe8Qaz2dOg8xA">Buy</a></body></html>`)
		},
	})
	mustLoad(t, hostedConfig(t.TempDir(), net.URL, hostPort(up)))
	cache := startNginx(t)

	a := visitor(t)
	if resp, _ := getURL(t, a, cache+"/?clickid=cacheA"); resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("no session cookie through the cache")
	}
	for range 2 {
		resp, page := getURL(t, a, cache+"/pricing")
		if !strings.Contains(page, "client_reference_id=") {
			t.Fatalf("A's page is not decorated (cache %s):\n%s", resp.Header.Get("X-Cache-Status"), page)
		}
	}

	b := visitor(t)
	for i := range 2 {
		resp, page := getURL(t, b, cache+"/pricing")
		if strings.Contains(page, "client_reference_id=") {
			t.Fatalf("visitor B got visitor A's decorated page from the cache (%s):\n%s", resp.Header.Get("X-Cache-Status"), page)
		}
		if status := resp.Header.Get("X-Cache-Status"); i == 1 && status != "HIT" {
			t.Errorf("the undecorated public page was not cached: the second request was a %s", status)
		}
	}
}
