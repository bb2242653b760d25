package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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

// cliConfig has an affiliate network, good, and a platform, flaky, whose
// postback URL carries a secret from the environment.
func cliConfig(storage, receiverURL string, adminPort, httpPort int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 1s
	postback {
		storage %s
		session_daily_limit off
		network good {
			click_param clickid
			url "%s/good?c={click_id}&o={order_id}&a={amount}"
		}
		network flaky {
			click_param fclick
			role platform
			url "%s/flaky?c={click_id}&o={order_id}&key={env.CLI_TEST_KEY}"
		}
	}
}

http://:%d {
	bind 127.0.0.1
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency EUR
		}
	}
	respond "thanks" 200
}
`, adminPort, storage, receiverURL, receiverURL, httpPort)
}

// TestPostbackCommands runs the `caddy postback` subcommands against a
// running Caddy after real clicks and purchases: listings with filters and
// paging as aligned tables, one conversion and one delivery in full with
// the secret masked, replays of a dead letter and of a network's dead
// letters, click lookup, the queue and health, --json, the API's errors,
// and tail following new deliveries until interrupted.
func TestPostbackCommands(t *testing.T) {
	const secret = "cli-secret-0123456789"
	t.Setenv("CLI_TEST_KEY", secret)
	bin := caddyBinary(t)
	var flakyStatus atomic.Int64
	flakyStatus.Store(400)
	network := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" {
			w.WriteHeader(int(flakyStatus.Load()))
			_, _ = io.WriteString(w, "flaky says "+http.StatusText(int(flakyStatus.Load())))
			return
		}
		_, _ = io.WriteString(w, "OK")
	}))
	defer network.Close()
	dir := t.TempDir()
	adminPort, httpPort := freePort(t), freePort(t)
	p := startCaddy(t, bin, dir, filepath.Join(dir, "home"), cliConfig(filepath.Join(dir, "postback"), network.URL, adminPort, httpPort), adminPort)
	addr := "127.0.0.1:" + itoa(adminPort)

	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(append([]string{"postback"}, args...), "--address", addr)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("caddy postback %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// tail, from before anything happened.
	tail := startTail(t, bin, addr)

	// A visitor clicks both networks and buys twice.
	jar, _ := cookiejar.New(nil)
	visitor := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	site := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	for i, path := range []string{"/?clickid=CLK-good-1&fclick=CLK-flaky-1", "/thank-you?order=T1&total=49.9", "/thank-you?order=T2&total=5"} {
		resp, err := visitor.Get(site + path)
		if err != nil {
			t.Fatalf("%v\n%s", err, p.tail())
		}
		resp.Body.Close()
		// A page's order is recorded once the page is sent: wait for it,
		// so that the orders are recorded in the order they were bought.
		if err := waitUntil(10*time.Second, 10*time.Millisecond, func() error {
			var list struct{ Items []any }
			if err := p.adminJSON("/postback/conversions", &list); err != nil || len(list.Items) != i {
				return fmt.Errorf("%w: %d conversions, %v", errNotYet, len(list.Items), err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Both orders reach good, and are dead letters of flaky (400).
	settled := func(dead int) func() error {
		return func() error {
			var qs []struct {
				Network                         string
				Queued, Retrying, Running, Dead int
			}
			if err := p.adminJSON("/postback/queue", &qs); err != nil {
				return err
			}
			for _, q := range qs {
				if q.Queued+q.Retrying+q.Running > 0 || (q.Network == "flaky" && q.Dead != dead) {
					return fmt.Errorf("%w: %+v", errNotYet, qs)
				}
			}
			return nil
		}
	}
	if err := waitUntil(20*time.Second, 20*time.Millisecond, settled(2)); err != nil {
		t.Fatal(err)
	}

	// Conversions: an aligned table, amounts with their currency, RFC 3339
	// times.
	out := mustCLI("conversions")
	assertTable(t, out, []string{"CREATED", "ID", "SOURCE", "EVENT", "ORDER", "AMOUNT", "STATUS", "CREDITED", "POSTBACKS"},
		[][]string{{"T2", "5.00 EUR", "approved"}, {"T1", "49.90 EUR", "approved", "good,flaky", "2"}})
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)  `).MatchString(out) {
		t.Errorf("conversion times are not RFC 3339:\n%s", out)
	}
	// Filters go to the API, which checks them.
	if out := mustCLI("conversions", "--network", "nobody"); strings.TrimSpace(out) != "no conversions" {
		t.Errorf("conversions of a network credited nothing:\n%s", out)
	}
	if out, err := cli("conversions", "--status", "paid"); err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "approved, pending, rejected, refunded") {
		t.Errorf("a bad filter: err %v\n%s", err, out)
	}
	// Paging: one per page, the cursor printed and followed.
	out = mustCLI("conversions", "--limit", "1")
	m := regexp.MustCompile(`more: --cursor (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "  T2  ") || strings.Contains(out, "  T1  ") {
		t.Fatalf("first page of one:\n%s", out)
	}
	if out := mustCLI("conversions", "--limit", "1", "--cursor", m[1]); !strings.Contains(out, "  T1  ") || strings.Contains(out, "  T2  ") {
		t.Errorf("second page of one:\n%s", out)
	}
	// --json is the API's answer.
	var convs struct {
		Items []struct {
			ID     string `json:"id"`
			Amount string `json:"amount"`
			Order  struct{ ID string }
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustCLI("conversions", "--json")), &convs); err != nil || len(convs.Items) != 2 || convs.Items[1].Amount != "49.90 EUR" {
		t.Fatalf("conversions --json: %v %+v", err, convs)
	}

	// One conversion: the order, why each network was credited, its
	// deliveries.
	out = mustCLI("conversion", convs.Items[1].ID)
	for _, want := range []string{"Order       T1", "Amount      49.90 EUR", "Credited:", "CLK-good-1", "last_click", "CLK-flaky-1", "platform", "Postbacks:", "delivered", "dead"} {
		if !strings.Contains(out, want) {
			t.Errorf("conversion lacks %q:\n%s", want, out)
		}
	}

	// Deliveries, by state; one in full with every attempt, secret masked.
	out = mustCLI("deliveries", "--state", "dead")
	assertTable(t, out, []string{"CREATED", "ID", "NETWORK", "EVENT", "ORDER", "STATE", "TRIES", "LAST ANSWER", "NOTE"},
		[][]string{{"flaky", "purchase", "T2", "dead", "1", "400 in"}, {"flaky", "purchase", "T1", "dead", "1", "400 in"}})
	var dead struct {
		Items []struct {
			ID      string `json:"id"`
			OrderID string `json:"order_id"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustCLI("deliveries", "--state", "dead", "--json")), &dead); err != nil || len(dead.Items) != 2 {
		t.Fatalf("deliveries --json: %v %+v", err, dead)
	}
	t1 := dead.Items[1].ID
	out = mustCLI("delivery", t1)
	for _, want := range []string{"Network     flaky", "State       dead", "Max age     72h0m0s", "Request (secrets masked):", "/flaky?c=CLK-flaky-1&o=T1&key=REDACTED",
		"Attempts:", "400", "rejected", "flaky says Bad Request", "rejected by the network (status 400)"} {
		if !strings.Contains(out, want) {
			t.Errorf("delivery lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the CLI shows the secret:\n%s", out)
	}
	if out, err := cli("delivery", "0123456789abcdef0123456789abcdef"); err == nil || !strings.Contains(out, "404") {
		t.Errorf("a missing delivery: err %v\n%s", err, out)
	}

	// Replay one dead letter once flaky takes it.
	flakyStatus.Store(200)
	if out := mustCLI("replay", t1); !strings.Contains(out, "delivery "+t1+" to flaky (purchase, order T1) queued again") {
		t.Errorf("replay:\n%s", out)
	}
	if err := waitUntil(20*time.Second, 20*time.Millisecond, settled(1)); err != nil {
		t.Fatal(err)
	}
	// Replay every dead letter of flaky: the one left.
	if out := mustCLI("replay", "--network", "flaky"); strings.TrimSpace(out) != "1 dead letter of flaky queued again" {
		t.Errorf("replay --network:\n%s", out)
	}
	if err := waitUntil(20*time.Second, 20*time.Millisecond, settled(0)); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("replay"); err == nil || !strings.Contains(out, "give a delivery ID, or --network") {
		t.Errorf("replay of nothing: err %v\n%s", err, out)
	}

	// Click lookup.
	out = mustCLI("lookup", "--click-id", "CLK-good-1")
	assertTable(t, out, []string{"CAPTURED", "NETWORK", "CLICK ID", "SESSION", "COUNTS UNTIL", "CONVERSIONS"},
		[][]string{{"good", "CLK-good-1"}})
	if !strings.Contains(out, convs.Items[0].ID) || !strings.Contains(out, convs.Items[1].ID) {
		t.Errorf("lookup does not name both conversions:\n%s", out)
	}
	if out := mustCLI("lookup", "--click-id", "never-seen"); !strings.Contains(out, "no live click") {
		t.Errorf("lookup of an unknown click ID:\n%s", out)
	}

	// Queue and health.
	assertTable(t, mustCLI("queue"), []string{"NETWORK", "QUEUED", "RETRYING", "RUNNING", "DEAD", "OLDEST WAITING", "NEXT DUE", "PAUSED UNTIL"},
		[][]string{{"flaky", "0", "0", "0", "0"}, {"good", "0", "0", "0", "0"}})
	if out := mustCLI("health"); !strings.Contains(out, "storage badger "+filepath.Join(dir, "postback")+": ok") {
		t.Errorf("health:\n%s", out)
	}

	// tail printed each delivery as it came, and each replayed attempt.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`good +purchase +order T1 +delivered +try 1 +200 in`),
		regexp.MustCompile(`good +purchase +order T2 +delivered +try 1 +200 in`),
		regexp.MustCompile(`flaky +purchase +order T1 +dead +try 1 +400 in .* rejected by the network`),
		regexp.MustCompile(`flaky +purchase +order T1 +delivered +try 2 +200 in`),
		regexp.MustCompile(`flaky +purchase +order T2 +delivered +try 2 +200 in`),
	} {
		if err := waitUntil(10*time.Second, 20*time.Millisecond, func() error {
			if !want.MatchString(tail.output()) {
				return errNotYet
			}
			return nil
		}); err != nil {
			t.Errorf("tail printed no line like %s:\n%s", want, tail.output())
		}
	}
	if out := tail.output(); strings.Contains(out, secret) {
		t.Fatalf("tail shows the secret:\n%s", out)
	}
	tail.interrupt(t)
}

// tailProc is a running `caddy postback tail`.
type tailProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

func startTail(t *testing.T, bin, addr string) *tailProc {
	tp := &tailProc{cmd: exec.Command(bin, "postback", "tail", "--address", addr, "--interval", "100ms"), done: make(chan error, 1)}
	stdout, err := tp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tp.cmd.Stderr = tp.cmd.Stdout
	setParentDeath(tp.cmd)
	if err := tp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			tp.mu.Lock()
			tp.out.WriteString(sc.Text() + "\n")
			tp.mu.Unlock()
		}
		tp.done <- tp.cmd.Wait()
	}()
	t.Cleanup(func() { _ = tp.cmd.Process.Kill() })
	return tp
}

func (tp *tailProc) output() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.out.String()
}

// interrupt sends SIGINT, as Ctrl-C does, and checks tail ends cleanly.
func (tp *tailProc) interrupt(t *testing.T) {
	t.Helper()
	if err := tp.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-tp.done:
		if err != nil {
			t.Errorf("tail ended with %v after an interrupt:\n%s", err, tp.output())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("tail did not end after an interrupt:\n%s", tp.output())
	}
}

// assertTable checks that out is a table whose first line is header, each
// column starting where its header does, and that for each of rows, in
// order, a line holds its cells in order.
func assertTable(t *testing.T, out string, header []string, rows [][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 1+len(rows) {
		t.Fatalf("table of %d lines, want a header and %d rows:\n%s", len(lines), len(rows), out)
	}
	cols := regexp.MustCompile(`^` + strings.Join(header, `( {2,})`) + `$`)
	if !cols.MatchString(lines[0]) {
		t.Fatalf("header is not %q:\n%s", header, out)
	}
	// Columns start where their headers start (counted in characters, as
	// a terminal shows them: latencies have a µ).
	var starts []int
	for _, h := range header {
		starts = append(starts, len([]rune(lines[0][:strings.Index(lines[0], h)])))
	}
	for _, line := range lines[1:] {
		if line == "" {
			break // a note after the table
		}
		l := []rune(line)
		for i, s := range starts[1:] {
			if len(l) <= s || l[s-1] != ' ' || l[s] == ' ' {
				t.Errorf("column %s is not aligned in %q:\n%s", header[i+1], line, out)
				break
			}
		}
	}
	next := 1
	for _, row := range rows {
		re := regexp.MustCompile(regexp.QuoteMeta(row[0]) + `.*` + func() string {
			var parts []string
			for _, c := range row[1:] {
				parts = append(parts, regexp.QuoteMeta(c))
			}
			return strings.Join(parts, `.*`)
		}())
		for next < len(lines) && !re.MatchString(lines[next]) {
			next++
		}
		if next == len(lines) {
			t.Errorf("no row (in order) with %q:\n%s", row, out)
			return
		}
		next++
	}
}
