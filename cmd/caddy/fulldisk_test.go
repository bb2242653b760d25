package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/store/storetest"
)

// These tests put the storage on a real, small filesystem (a tmpfs) and
// fill it, because that is where an embedded store that writes through
// memory maps kills its process: with SIGBUS, taking every site with it.
// Mounting needs root, as CI runs.

// lastLog is the log of the Caddy under test, for failures of helpers.
var lastLog interface{ String() string } = noLog{}

type noLog struct{}

func (noLog) String() string { return "" }

type procLog struct{ p *proc }

func (l procLog) String() string { return l.p.tail() }

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fillTo writes a file in dir until dir has at most leave bytes free.
func fillTo(t *testing.T, path, dir string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 1<<20)
	for {
		free := freeBytes(t, dir)
		if free <= leave {
			return
		}
		n := min(int64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			return // the filesystem is full
		}
	}
}

const fullDiskSecret = "whsec_full_disk_test"

func fullDiskConfig(storage, receiverURL string, adminPort, httpPort int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 1s
	postback {
		storage badger %s {
			min_free 16MiB
		}
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}"
		}
		delivery {
			retry_base 100ms
			retry_max 500ms
		}
	}
}

http://:%d {
	bind 127.0.0.1
	postback {
		webhook /hooks/generic generic %s {
			header X-Signature
			order_id order.id
			amount order.total
			currency order.currency
		}
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			default_currency USD
		}
	}
	respond "page {path}" 200
}
`, adminPort, storage, receiverURL, httpPort, fullDiskSecret)
}

// landing requests a landing URL with a fresh visitor (or the given jar)
// and reports the page's status and whether a session cookie was set.
func landing(t *testing.T, base string, jar http.CookieJar, click string) (int, bool) {
	t.Helper()
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	// A long landing URL, as ad platforms append their tracking to it.
	resp, err := c.Get(base + "/?clickid=" + click + "&utm_content=" + strings.Repeat("u", 1500))
	if err != nil {
		t.Fatalf("landing request for click %s: %v\n%s", click, err, lastLog)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.Contains(resp.Header.Get("Set-Cookie"), "_pbsid=")
}

func postGeneric(t *testing.T, base, orderID string) int {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"order":{"id":%q,"total":"10.00","currency":"USD"}}`, orderID))
	mac := hmac.New(sha256.New, []byte(fullDiskSecret))
	mac.Write(body)
	req, _ := http.NewRequest("POST", base+"/hooks/generic", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webhook while the disk is full: %v (the connection must not be closed on it)", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFullDiskNeverTakesTheSiteDown fills the storage's filesystem (with a
// file, then with clicks), and checks that Caddy keeps serving every page,
// skips capture without promising a cookie, answers a webhook 503, says
// what is wrong, resumes by itself when space returns, and starts and
// serves on a directory that is full.
func TestFullDiskNeverTakesTheSiteDown(t *testing.T) {
	bin := caddyBinary(t)
	mnt := storetest.Tmpfs(t, "96m")
	storage := filepath.Join(mnt, "postback")
	filler := filepath.Join(mnt, "filler")
	rc := newDurReceiver(t)
	dir := t.TempDir()
	adminPort, httpPort := freePort(t), freePort(t)
	cfg := fullDiskConfig(storage, rc.URL, adminPort, httpPort)
	p := startCaddy(t, bin, dir, filepath.Join(dir, "home"), cfg, adminPort)
	lastLog = procLog{p}
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	waitServing(t, p, base)

	// Leave 24 MiB, then fill the rest with clicks until capture stops.
	fillTo(t, filler, mnt, 24<<20)
	captured, skipped := 0, 0
	for i := 0; skipped < 50; i++ {
		status, cookie := landing(t, base, nil, fmt.Sprintf("full-%d", i))
		if status != 200 {
			t.Fatalf("landing page %d answered %d while the disk filled", i, status)
		}
		if cookie {
			captured++
		} else {
			skipped++
		}
		if i > 100000 {
			t.Fatal("capture never stopped")
		}
	}
	t.Logf("%d clicks captured before the free-space guard stopped writes (%d MiB free)", captured, freeBytes(t, mnt)>>20)
	if captured == 0 {
		t.Fatal("nothing was captured before the disk was full")
	}
	// The store closes itself once the guard stops writes, so that nothing
	// of Badger's writes into the disk when something else fills it to the
	// last byte. Then fill what the guard left.
	if err := waitUntil(30*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(p.log); !bytes.Contains(b, []byte("closed while the disk is full")) {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("the store did not close on a full disk:\n%s", p.tail())
	}
	fillTo(t, filler+"2", mnt, 0)
	for i := range 200 {
		select {
		case <-p.exited:
			t.Fatalf("caddy died with the disk full:\n%s", p.tail())
		default:
		}
		if status, cookie := landing(t, base, nil, fmt.Sprintf("afterfull-%d", i)); status != 200 || cookie {
			t.Fatalf("with the disk full: status %d, cookie %v", status, cookie)
		}
	}
	if status := postGeneric(t, base, "FULL-1"); status != http.StatusServiceUnavailable {
		t.Fatalf("a signed webhook while the disk is full: %d, want 503", status)
	}
	resp, err := http.Get(p.admin + "/postback/health")
	if err != nil {
		t.Fatal(err)
	}
	health, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(health), "free") {
		t.Fatalf("health while full: %d %s", resp.StatusCode, health)
	}
	select {
	case <-p.exited:
		t.Fatalf("caddy died with the disk full:\n%s", p.tail())
	default:
	}
	if b, _ := os.ReadFile(p.log); !bytes.Contains(b, []byte("refuses writes")) {
		t.Errorf("no log line says the storage refuses writes:\n%s", p.tail())
	}

	// Space returns: tracking resumes by itself.
	_ = os.Remove(filler)
	_ = os.Remove(filler + "2")
	if err := waitUntil(30*time.Second, 100*time.Millisecond, func() error {
		if _, cookie := landing(t, base, nil, "back-1"); !cookie {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("capture did not resume after space returned:\n%s", p.tail())
	}
	if status := postGeneric(t, base, "BACK-1"); status != 200 {
		t.Fatalf("a webhook after space returned: %d", status)
	}

	// A restart on a directory that is full: Caddy starts and serves.
	p.kill()
	fillTo(t, filler, mnt, 0)
	p2 := startCaddy(t, bin, dir, filepath.Join(dir, "home"), cfg, adminPort)
	waitServing(t, p2, base)
	for i := range 20 {
		if status, cookie := landing(t, base, nil, fmt.Sprintf("restart-%d", i)); status != 200 || cookie {
			t.Fatalf("after a restart on a full disk: status %d, cookie %v", status, cookie)
		}
	}
	if status := postGeneric(t, base, "FULL-2"); status != http.StatusServiceUnavailable {
		t.Fatalf("a webhook after a restart on a full disk: %d, want 503", status)
	}
	_ = os.Remove(filler)
	if err := waitUntil(30*time.Second, 100*time.Millisecond, func() error {
		if _, cookie := landing(t, base, nil, "back-2"); !cookie {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("capture did not resume after a full start:\n%s", p2.tail())
	}

	// A start on a read-only filesystem: Caddy starts and serves, and
	// tracking resumes once it is writable again.
	p2.kill()
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-only: %v %s", err, out)
	}
	p3 := startCaddy(t, bin, dir, filepath.Join(dir, "home"), cfg, adminPort)
	waitServing(t, p3, base)
	for i := range 20 {
		if status, cookie := landing(t, base, nil, fmt.Sprintf("readonly-%d", i)); status != 200 || cookie {
			t.Fatalf("on a read-only filesystem: status %d, cookie %v", status, cookie)
		}
	}
	if status := postGeneric(t, base, "RO-1"); status != http.StatusServiceUnavailable {
		t.Fatalf("a webhook on a read-only filesystem: %d, want 503", status)
	}
	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-write: %v %s", err, out)
	}
	if err := waitUntil(30*time.Second, 100*time.Millisecond, func() error {
		if _, cookie := landing(t, base, nil, "back-3"); !cookie {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("capture did not resume once the filesystem was writable:\n%s", p3.tail())
	}
}

// TestRepeatedClicksWriteLittle: every click of one visitor writes its own
// touchpoint, not the whole session again, so a client repeating clicks on
// one cookie cannot multiply what it sends into what is written.
func TestRepeatedClicksWriteLittle(t *testing.T) {
	bin := caddyBinary(t)
	mnt := storetest.Tmpfs(t, "256m")
	rc := newDurReceiver(t)
	dir := t.TempDir()
	adminPort, httpPort := freePort(t), freePort(t)
	p := startCaddy(t, bin, dir, filepath.Join(dir, "home"), fullDiskConfig(filepath.Join(mnt, "postback"), rc.URL, adminPort, httpPort), adminPort)
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	waitServing(t, p, base)
	jar, _ := cookiejar.New(nil)
	landing(t, base, jar, "first")
	before := freeBytes(t, mnt)
	const clicks = 2000
	sent := 0
	for i := range clicks {
		landing(t, base, jar, fmt.Sprintf("again-%d", i))
		sent += 1500
	}
	written := before - freeBytes(t, mnt)
	t.Logf("%d clicks of ~%d KB each on one session: %d KB written (%.1fx what was sent)", clicks, 1500/1024+1, written>>10, float64(written)/float64(sent))
	// A session keeps 20 touchpoints: rewriting it whole at every click
	// would write ~20 times what each click sent.
	if written > int64(sent)*4 {
		t.Fatalf("%d clicks wrote %d KB for %d KB sent: a click rewrites more than its own touchpoint", clicks, written>>10, sent>>10)
	}
}
