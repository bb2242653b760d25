package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

// These tests run the real binary, built from this package, as a child
// process: only a separate process can be killed with SIGKILL and started
// again on the same storage, which is what durability means.

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	pgtest.Stop()
	os.Exit(code)
}

// goTool finds the go command of this toolchain: $GOROOT/bin/go when GOROOT
// is set (go test sets it for the test binary's environment only when the
// user did), else the one on PATH.
func goTool() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// caddyBinary builds this package once per test run and returns the
// binary's path. Without a go command the test fails: a skipped
// durability test would hide a regression.
func caddyBinary(tb testing.TB) string {
	tb.Helper()
	goCmd, err := goTool()
	if err != nil {
		tb.Fatalf("the go command is not available to build the binary: %v", err)
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "caddy-postback-bin-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "caddy")
		cmd := exec.Command(goCmd, "build", "-o", buildBin, ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one run of the binary.
type proc struct {
	cmd    *exec.Cmd
	log    string // combined stdout and stderr
	admin  string // http://127.0.0.1:port
	exited chan struct{}
}

// startCaddy runs `caddy run` with caddyfile (written to dir) and waits
// until its admin endpoint and the postback app answer. home keeps Caddy's
// own data and config out of the user's home directory. The child is killed
// when the test ends, and dies with the test binary (see setParentDeath).
func startCaddy(tb testing.TB, bin, dir, home, caddyfile string, adminPort int) *proc {
	tb.Helper()
	return startCaddyEnv(tb, bin, dir, home, caddyfile, adminPort)
}

// startCaddyEnv is startCaddy with more environment variables.
func startCaddyEnv(tb testing.TB, bin, dir, home, caddyfile string, adminPort int, env ...string) *proc {
	tb.Helper()
	cf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cf, []byte(caddyfile), 0o600); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.CreateTemp(dir, "caddy-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", cf, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	cmd.Env = append(cmd.Env, env...)
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logf.Name(), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	tb.Cleanup(p.kill)

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			tb.Fatalf("caddy exited while starting:\n%s", p.tail())
		default:
		}
		// The postback routes answer: 200, or 503 while the storage is
		// unavailable (a start on a full disk). The admin endpoint answers
		// before the apps have started: a 503 that says the app is not
		// running yet is no answer.
		if resp, err := http.Get(p.admin + "/postback/health"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK ||
				(resp.StatusCode == http.StatusServiceUnavailable && !strings.Contains(string(b), "not running")) {
				return p
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("caddy did not start within a minute:\n%s", p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone. It is safe to
// call more than once.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
	}
}

// tail returns the end of the child's log, for failure messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// adminJSON GETs an admin path and decodes the JSON answer into v.
func (p *proc) adminJSON(path string, v any) error {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(p.admin + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decoding %q: %w", path, b, err)
	}
	return nil
}

// pending returns the deliveries that wait or run, per network, from the
// admin API.
func (p *proc) pending() (map[string]int, error) {
	var qs []struct {
		Network                   string
		Queued, Retrying, Running int
	}
	err := p.adminJSON("/postback/queue", &qs)
	m := map[string]int{}
	for _, q := range qs {
		if n := q.Queued + q.Retrying + q.Running; n > 0 {
			m[q.Network] = n
		}
	}
	return m, err
}

// errNotYet is what a bounded wait keeps retrying on.
var errNotYet = errors.New("not yet")

// waitUntil calls cond every step until it returns nil or within passes,
// and returns cond's last error.
func waitUntil(within, step time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(step)
	}
}

// waitServing waits until the site at base answers: the admin endpoint
// answers before every app of a config has started.
func waitServing(tb testing.TB, p *proc, base string) {
	tb.Helper()
	if err := waitUntil(30*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(base + "/up")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		tb.Fatalf("%s does not serve: %v\n%s", base, err, p.tail())
	}
}
