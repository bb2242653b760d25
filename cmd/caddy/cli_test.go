package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPostbackTestCommand runs `caddy postback test` against a running
// Caddy: the command goes through the admin API (it never opens the
// store), and prints the exact request and the network's answer.
func TestPostbackTestCommand(t *testing.T) {
	bin := caddyBinary(t)
	var got atomic.Value
	var answer atomic.Int64
	answer.Store(200)
	network := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RequestURI())
		w.WriteHeader(int(answer.Load()))
		_, _ = w.Write([]byte("network says hi"))
	}))
	defer network.Close()
	dir := t.TempDir()
	adminPort, httpPort := freePort(t), freePort(t)
	startCaddy(t, bin, dir, filepath.Join(dir, "home"), durableConfig(filepath.Join(dir, "postback"), network.URL, adminPort, httpPort), adminPort)

	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"postback", "test", "--address", "127.0.0.1:" + itoa(adminPort)}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("--network", "dur", "--click-id", "CLI-1", "--amount", "10", "--order", "T1")
	if err != nil {
		t.Fatalf("caddy postback test: %v\n%s", err, out)
	}
	for _, want := range []string{"GET " + network.URL + "/pb?clickid=CLI-1&order=T1&amount=10.00", "status 200", "delivered", "network says hi"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if v, _ := got.Load().(string); v != "/pb?clickid=CLI-1&order=T1&amount=10.00" {
		t.Errorf("network received %q", v)
	}

	// A rejecting network makes the command fail, with the answer shown.
	answer.Store(400)
	out, err = run("--network", "dur", "--order", "T2")
	if err == nil || !strings.Contains(out, "status 400") || !strings.Contains(out, "rejected") {
		t.Errorf("rejected test fire: err %v\n%s", err, out)
	}
	// An unknown network is an error naming the configured ones.
	out, err = run("--network", "nope")
	if err == nil || !strings.Contains(out, "dur") {
		t.Errorf("unknown network: err %v\n%s", err, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
