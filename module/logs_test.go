package module_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// logLine is one line of Caddy's JSON log.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// readLog returns the lines of a JSON log file.
func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// waitLog waits until the log has a line with msg, and returns it.
func waitLog(t *testing.T, path, msg string, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range readLog(t, path) {
			if l.str("msg") == msg && (match == nil || match(l)) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within 10s", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logsConfig(logFile, storage, minFree, retryBase, netURL, upstream string) string {
	return fmt.Sprintf(`{
%s	log {
		output file %s
		level INFO
	}
	postback {
		storage badger %s {
			min_free %s
		}
		network good {
			click_param clickid
			url "%s/good?c={click_id}&o={order_id}"
		}
		network flappy {
			click_param fclick
			role platform
			url "%s/flappy?c={click_id}&o={order_id}"
		}
		network rejecter {
			click_param rclick
			role platform
			url "%s/rejecter?c={click_id}&o={order_id}"
		}
		delivery {
			retry_base %s
			retry_max 100ms
			pause_after 1
			pause_base 100ms
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency USD
		}
	}
	reverse_proxy %s
}
`, globalHead(), logFile, storage, minFree, netURL, netURL, netURL, retryBase, httpPort, upstream)
}

// TestLogs reads the log of a real Caddy through a purchase credited to
// three networks (one delivers, one keeps failing until it recovers, one
// rejects), then a reload that changes options that apply only at a
// restart: one Info line per conversion and per delivered postback, a
// Warn per dead letter, per pause and per recovery, times in RFC 3339, the
// startup summary, the reload warnings, and no click ID, visitor address
// or landing URL anywhere above Debug.
func TestLogs(t *testing.T) {
	var flappyUp atomic.Bool
	net := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/rejecter":
			w.WriteHeader(400)
		case r.URL.Path == "/flappy" && !flappyUp.Load():
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(net.Close)
	up := shop(t, nil)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "caddy.log")
	storage := filepath.Join(dir, "data")
	mustLoad(t, logsConfig(logFile, storage, "1MiB", "50ms", net.URL, hostPort(up)))

	summary := waitLog(t, logFile, "postback tracking started", nil)
	for _, want := range []string{"good (get, affiliate)", "flappy (get, platform)", "rejecter (get, platform)"} {
		if !strings.Contains(summary.str("networks"), want) {
			t.Errorf("startup summary's networks %q lack %q", summary.str("networks"), want)
		}
	}
	if !strings.Contains(summary.str("storage"), "badger "+storage) || !strings.Contains(summary.str("sites"), "purchase") {
		t.Errorf("startup summary: %v", summary)
	}

	v := visitor(t)
	get(t, v, "/landing?clickid=LOGCLICK-good&fclick=LOGCLICK-flappy&rclick=LOGCLICK-rejecter")
	get(t, v, "/thank-you?order=LOG-1&total=12.5")

	conv := waitLog(t, logFile, "conversion", nil)
	if conv.str("level") != "info" || conv.str("order_id") != "LOG-1" || conv.str("amount") != "12.50" || conv.str("currency") != "USD" ||
		conv.str("source") != "page" || conv.str("event") != "purchase" || !strings.Contains(conv.str("credited"), "good: last_click") ||
		!strings.Contains(conv.str("credited"), "rejecter: platform") {
		t.Errorf("conversion line: %v", conv)
	}
	delivered := waitLog(t, logFile, "postback delivered", func(l logLine) bool { return l.str("network") == "good" })
	if delivered.str("level") != "info" || delivered.str("order_id") != "LOG-1" || delivered["status"] != 200.0 {
		t.Errorf("delivered line: %v", delivered)
	}
	dead := waitLog(t, logFile, "postback dead-lettered", nil)
	if dead.str("level") != "warn" || dead.str("network") != "rejecter" || dead.str("order_id") != "LOG-1" ||
		!strings.Contains(dead.str("reason"), "status 400") {
		t.Errorf("dead-letter line: %v", dead)
	}
	paused := waitLog(t, logFile, "network keeps failing; pausing its deliveries", nil)
	until, err := time.Parse(time.RFC3339, paused.str("until"))
	if paused.str("level") != "warn" || paused.str("network") != "flappy" || err != nil || until.IsZero() {
		t.Errorf("pause line (until not RFC 3339? %v): %v", err, paused)
	}
	if _, err := time.ParseDuration(paused.str("pause")); err != nil {
		t.Errorf("pause line's pause is not a duration: %v", paused)
	}
	flappyUp.Store(true)
	recovered := waitLog(t, logFile, "network recovered; its deliveries flow again", nil)
	if recovered.str("level") != "warn" || recovered.str("network") != "flappy" {
		t.Errorf("recovery line: %v", recovered)
	}
	if _, err := time.Parse(time.RFC3339, recovered.str("paused_until")); err != nil {
		t.Errorf("recovery line's paused_until is not RFC 3339: %v", recovered)
	}
	waitQueueEmpty(t, 10*time.Second)

	// A reload that changes a storage option and a delivery timing option
	// warns that they apply only after a restart, naming them.
	if err := loadCaddyfile(logsConfig(logFile, storage, "2MiB", "60ms", net.URL, hostPort(up))); err != nil {
		t.Fatal(err)
	}
	st := waitLog(t, logFile, "storage options changed; the open storage keeps its options until Caddy restarts", nil)
	if st.str("level") != "warn" || fmt.Sprint(st["options"]) != "[min_free]" {
		t.Errorf("storage options warning: %v", st)
	}
	tm := waitLog(t, logFile, "delivery timing options changed; they take effect after a restart (networks, templates and concurrency change now)", nil)
	if fmt.Sprint(tm["options"]) != "[retry_base]" {
		t.Errorf("delivery timing warning: %v", tm)
	}

	// Nothing the tracker logs above Debug holds a click ID, the
	// visitor's address or the landing URL (Caddy's own admin lines name
	// the admin's clients).
	ours := 0
	for _, l := range readLog(t, logFile) {
		logger := l.str("logger")
		if l.str("level") == "debug" || !strings.HasPrefix(logger, "postback") && !strings.HasPrefix(logger, "http.handlers.postback") {
			continue
		}
		ours++
		b, _ := json.Marshal(l)
		for _, personal := range []string{"LOGCLICK", "127.0.0.1", "/landing"} {
			if strings.Contains(string(b), personal) {
				t.Errorf("a %s line holds %q: %s", l.str("level"), personal, b)
			}
		}
	}
	if ours < 8 {
		t.Errorf("only %d lines of the tracker were checked", ours)
	}
}
