package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// webhookPath and webhookSecret are the Stripe endpoint of the "with"
// config.
const (
	webhookPath   = "/.well-known/postback/stripe"
	webhookSecret = "whsec_bench_0123456789abcdef0123456789abcdef"
)

// buildCaddy builds ./cmd/caddy once into dir and returns the binary.
func buildCaddy(root, dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %w", err)
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod this program belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run this from inside the caddy-postback module")
	}
	return filepath.Dir(gomod), nil
}

// caddyfile is the config both instances run. They differ only in the site
// block's postback directive: withDirective adds it (a GA4 confirmation
// rule, a Stripe webhook endpoint and Stripe link decoration). The global
// postback app (store, network) is in both, so the only difference measured
// is the directive's work on requests.
func caddyfile(adminPort, port int, storage, upstream, extra string, withDirective bool) string {
	directive := ""
	if withDirective {
		directive = fmt.Sprintf(`	postback {
		conversion purchase {
			match path /thank-you
			from ga4
		}
		webhook %s stripe %s
		decorate buy.stripe.com stripe
	}
`, webhookPath, webhookSecret)
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	postback {
		storage %s
		# The confirmation-page scenario records many orders per visitor.
		session_daily_limit off
		network demo {
			click_param clickid
			url "http://%s/postback?clickid={click_id}&payout={amount}&txid={order_id}"
		}
		%s
	}
}

:%d {
%s	reverse_proxy %s
}
`, adminPort, storage, upstream, extra, port, directive, upstream)
}

// instance is one running Caddy process.
type instance struct {
	name string
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	log  string
	done chan error
}

// startCaddy writes the config into its own directory (storage, Caddy's
// data and config dirs, log) and runs the binary until it answers.
func startCaddy(bin, dir, name, upstream, extra, pgDSN string, withDirective bool) (*instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	storage := filepath.Join(dir, "postback")
	if pgDSN != "" {
		// Each instance its own schema of the database.
		storage = fmt.Sprintf("postgres %q {\n\t\t\tschema bench_%s\n\t\t}", pgDSN, name)
	}
	cfg := caddyfile(adminPort, port, storage, upstream, extra, withDirective)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "caddy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Keep Caddy's own data (autosave, certificates) out of the user's home.
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	in := &instance{name: name, cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait(); logFile.Close() }()

	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-in.done:
			return nil, fmt.Errorf("%s: caddy exited during start (%v); see %s", name, err, logPath)
		default:
		}
		if resp, err := client.Get(in.base + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in, nil
			}
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, fmt.Errorf("%s: caddy did not answer within 60s; see %s", name, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop asks Caddy to shut down gracefully (SIGINT), then kills this one
// process if it does not within ten seconds.
func (in *instance) stop() {
	if in == nil || in.cmd.Process == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-in.done:
	case <-ctx.Done():
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}
