package module_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Conversions from anywhere: the universal endpoint and the marketplaces'
// payment notifications, each through its recipe.

func TestRecipePostbackEndpoint(t *testing.T) {
	net := newNetwork(t)
	const token = "pbt_5d41402abc4b2a76b9719d911017c592"
	loadRecipe(t, "postback-endpoint.Caddyfile", map[string]string{
		"PARTNER_URL": net.URL, "META_URL": net.URL, "META_PIXEL_ID": "1234567890", "META_TOKEN": "EAAtoken",
		"POSTBACK_TOKEN": token, "UPSTREAM": hostPort(shop(t, nil)),
	})
	v := visitor(t)
	get(t, v, "/?clickid=PTN-1&fbclid=IwAR2F4-dbP0l7Mn1IawQQ")

	// The backend reports the paid order.
	hdr := map[string]string{"X-Postback-Token": token}
	status, ans := report(t, "GET", "/postback/in?click_id=PTN-1&order_id=A-1001&amount=99.00&currency=EUR&payout=30", hdr, "")
	if status != 200 || ans["status"] != "recorded" || ans["postbacks"] != 2.0 {
		t.Fatalf("report: %d %v", status, ans)
	}
	got := net.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("postbacks %q", got)
	}
	net.mu.Lock()
	var partner, meta string
	for i, r := range net.hits {
		switch r.URL.Path {
		case "/postback":
			partner = r.URL.RequestURI()
		case "/v21.0/1234567890/events":
			meta = net.bodies[i]
		}
	}
	net.mu.Unlock()
	if partner != "/postback?clickid=PTN-1&txid=A-1001&amount=99.00&currency=EUR&status=approved&offer=42&payout=30.00" {
		t.Errorf("partner postback %q", partner)
	}
	if !strings.Contains(meta, `"event_name":"Purchase"`) || !strings.Contains(meta, `"value":99.00`) || !strings.Contains(meta, `"currency":"EUR"`) {
		t.Errorf("meta event %s", meta)
	}

	// A repeat sends nothing; a wrong token writes nothing.
	if status, ans := report(t, "GET", "/postback/in?click_id=PTN-1&order_id=A-1001&amount=99.00&currency=EUR", hdr, ""); status != 200 || ans["status"] != "duplicate" {
		t.Fatalf("repeat: %d %v", status, ans)
	}
	if status, _ := report(t, "GET", "/postback/in?click_id=PTN-1&order_id=A-1002", map[string]string{"X-Postback-Token": "pbt_guess_guess_guess_guess"}, ""); status != 401 {
		t.Fatalf("wrong token: %d", status)
	}
	// A click ID never seen here is relayed to the partner as it is.
	status, ans = report(t, "GET", "/postback/in?click_id=OTHER-9&order_id=A-1003&amount=10&currency=EUR", hdr, "")
	if status != 202 || ans["status"] != "relayed" {
		t.Fatalf("relay: %d %v", status, ans)
	}
	got = net.waitFor(t, 3, 5*time.Second)
	if len(got) != 3 || got[2] != "/postback?clickid=OTHER-9&txid=A-1003&amount=10.00&currency=EUR&status=approved&offer=42&payout=" {
		t.Fatalf("postbacks %q", got)
	}
	waitQueueEmpty(t, 5*time.Second)
	if got := net.requests(); len(got) != 3 {
		t.Fatalf("postbacks %q", got)
	}
}

// ipnVisit lands a visitor with a click ID on the sales page and returns
// the session reference that the decorated buy link carries in param.
func ipnVisit(t *testing.T, buyLink, param string) string {
	t.Helper()
	v := visitor(t)
	_, page := get(t, v, "/?clickid=IPN-CLICK-1")
	m := regexp.MustCompile(regexp.QuoteMeta(buyLink) + `[?&](?:amp;)?` + param + `=([A-Za-z0-9_-]+)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("buy link not decorated with %s: %s", param, page)
	}
	return m[1]
}

// ipnPage is a sales page with one buy link.
func ipnPage(t *testing.T, buyLink string) string {
	return hostPort(shop(t, map[string]func(http.ResponseWriter, *http.Request){
		"/": htmlPage(`<!doctype html><html><body><a class="buy" href="` + buyLink + `">Buy now</a></body></html>`),
	}))
}

// wantIPNPostbacks checks that the partner got a sale, a rebill and a
// refund, each once, for the click the visitor came with.
func wantIPNPostbacks(t *testing.T, net *network, sale, rebill, offer, amount string) {
	t.Helper()
	net.waitFor(t, 3, 5*time.Second)
	waitQueueEmpty(t, 5*time.Second)
	got := net.requests()
	sort.Strings(got)
	want := []string{
		"/postback?clickid=IPN-CLICK-1&txid=" + url.QueryEscape(rebill) + "&amount=" + amount + "&event=rebill&status=approved&offer=" + offer,
		"/postback?clickid=IPN-CLICK-1&txid=" + url.QueryEscape(sale) + "&amount=" + amount + "&event=purchase&status=approved&offer=" + offer,
		"/postback?clickid=IPN-CLICK-1&txid=" + url.QueryEscape(sale) + "&amount=" + amount + "&event=purchase&status=refunded&offer=" + offer,
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("postbacks\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// cbSeal encrypts an INS notification as ClickBank does: AES-256-CBC with
// PKCS#7 padding, the key the first 32 hex digits of SHA-1 of the secret
// key, in the JSON envelope {"notification", "iv"}.
func cbSeal(t *testing.T, secret string, plaintext []byte) []byte {
	t.Helper()
	sum := sha1.Sum([]byte(secret))
	block, err := aes.NewCipher([]byte(hex.EncodeToString(sum[:])[:32]))
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, aes.BlockSize)
	_, _ = rand.Read(iv)
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte(nil), plaintext...), bytes.Repeat([]byte{byte(n)}, n)...)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	body, _ := json.Marshal(map[string]string{
		"notification": base64.StdEncoding.EncodeToString(ct), "iv": base64.StdEncoding.EncodeToString(iv),
	})
	return body
}

func TestRecipeClickBank(t *testing.T) {
	net := newNetwork(t)
	const secret = "TESTSECRET123456"
	const payLink = "https://widgetco.pay.clickbank.net/?cbitems=1"
	loadRecipe(t, "clickbank.Caddyfile", map[string]string{
		"PARTNER_URL": net.URL, "CLICKBANK_SECRET": secret, "UPSTREAM": ipnPage(t, payLink),
	})
	ref := ipnVisit(t, "https://widgetco.pay.clickbank.net/?cbitems=1", "pb_session")

	// The fixture's version 7.0 sale, with this visitor's reference.
	sale := testdataWebhook(t, "clickbank_sale.json")
	sale = bytes.Replace(sale, []byte(`"pb_session":"s1_ClickBankSessionReference_sig"`), []byte(`"pb_session":"`+ref+`"`), 1)
	if !bytes.Contains(sale, []byte(ref)) {
		t.Fatal("fixture has no pb_session to replace")
	}
	rebill := bytes.Replace(bytes.Replace(sale, []byte(`"receipt":"K7XQ2M9R"`), []byte(`"receipt":"K7XQ2M9R-B001"`), 1),
		[]byte(`"transactionType":"SALE"`), []byte(`"transactionType":"BILL"`), 1)
	refund := bytes.Replace(sale, []byte(`"transactionType":"SALE"`), []byte(`"transactionType":"RFND"`), 1)
	ct := map[string]string{"Content-Type": "application/json"}

	if post(t, "/hooks/clickbank", cbSeal(t, "OTHERSECRET12345", sale), ct) != 401 {
		t.Fatal("a notification encrypted with another key was taken")
	}
	if post(t, "/hooks/clickbank", cbSeal(t, secret, sale), ct) != 200 {
		t.Fatal("sale refused")
	}
	net.waitFor(t, 1, 5*time.Second)
	for _, n := range [][]byte{rebill, refund} {
		if post(t, "/hooks/clickbank", cbSeal(t, secret, n), ct) != 200 {
			t.Fatalf("notification refused: %s", n[:80])
		}
	}
	// ClickBank retries a notification it thinks was lost: nothing more.
	if post(t, "/hooks/clickbank", cbSeal(t, secret, sale), ct) != 200 {
		t.Fatal("retried sale refused")
	}
	wantIPNPostbacks(t, net, "K7XQ2M9R", "K7XQ2M9R-B001", "widget-pro", "47.00")
}

// jvzooSign appends cverify as JVZoo computes it: the values of every
// other field in ascending order of name, each followed by "|", then the
// secret key; SHA-1; the first 8 hex digits in upper case.
func jvzooSign(form url.Values, secret string) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		if k != "cverify" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(form.Get(k) + "|")
	}
	sum := sha1.Sum([]byte(b.String() + secret))
	form.Set("cverify", strings.ToUpper(hex.EncodeToString(sum[:])[:8]))
	return form.Encode()
}

// fixtureForm reads a form fixture and sets fields on it; every field set
// must exist, so that a fixture edit cannot silently defeat a test.
func fixtureForm(t *testing.T, name string, kv ...string) url.Values {
	t.Helper()
	form, err := url.ParseQuery(string(testdataWebhook(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if !form.Has(kv[i]) {
			t.Fatalf("%s has no field %s", name, kv[i])
		}
		form.Set(kv[i], kv[i+1])
	}
	return form
}

func TestRecipeJVZoo(t *testing.T) {
	net := newNetwork(t)
	const secret = "jvzipn-secret-key-01"
	const buyLink = "https://www.jvzoo.com/b/0/123456/99"
	loadRecipe(t, "jvzoo.Caddyfile", map[string]string{
		"PARTNER_URL": net.URL, "JVZOO_SECRET": secret, "UPSTREAM": ipnPage(t, buyLink),
	})
	ref := ipnVisit(t, buyLink, "pb_session")
	pass := "pb_session=" + ref + "&utm_source=fb"
	form := func(kv ...string) string {
		return jvzooSign(fixtureForm(t, "jvzoo_v1_sale.form", append([]string{"cvendthru", pass}, kv...)...), secret)
	}
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	sale := form()
	if post(t, "/hooks/jvzoo", []byte(jvzooSign(fixtureForm(t, "jvzoo_v1_sale.form", "cvendthru", pass), "wrong-secret")), ct) != 401 {
		t.Fatal("a notification signed with another key was taken")
	}
	if post(t, "/hooks/jvzoo", []byte(sale), ct) != 200 {
		t.Fatal("sale refused")
	}
	net.waitFor(t, 1, 5*time.Second)
	for _, n := range []string{
		form("ctransaction", "BILL", "ctransreceipt", "ABCDEFGHJKLMNPQRS-B002", "ctranstime", "1702592000"),
		form("ctransaction", "RFND", "ctranstime", "1703000000"),
		sale, // JVZoo resends hourly until it gets a 200: a duplicate
	} {
		if post(t, "/hooks/jvzoo", []byte(n), ct) != 200 {
			t.Fatalf("notification refused: %s", n)
		}
	}
	wantIPNPostbacks(t, net, "ABCDEFGHJKLMNPQRS", "ABCDEFGHJKLMNPQRS-B002", "jvz-123456", "47.00")
}

func TestRecipeWarriorPlus(t *testing.T) {
	net := newNetwork(t)
	const key = "wp-key-7Hq2Lx9Rv4Nz"
	const buyLink = "https://warriorplus.com/o2/buy/abc123/def456/ghi789"
	loadRecipe(t, "warriorplus.Caddyfile", map[string]string{
		"PARTNER_URL": net.URL, "WARRIORPLUS_KEY": key, "UPSTREAM": ipnPage(t, buyLink),
	})
	ref := ipnVisit(t, buyLink, "s")
	form := func(kv ...string) string {
		f := fixtureForm(t, "warriorplus_sale.form", append([]string{"WP_SID", ref}, kv...)...)
		// The first payment of a subscription names it, so that its later
		// payments find the sale.
		f.Set("WP_SUBSCR_ID", "wpsub_77")
		return f.Encode()
	}
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if post(t, "/hooks/warriorplus", []byte(form("WP_SECURITYKEY", "wp-key-guessed-000")), ct) != 401 {
		t.Fatal("a notification with another key was taken")
	}
	sale := form("WP_ACTION", "subscr_created")
	if post(t, "/hooks/warriorplus", []byte(sale), ct) != 200 {
		t.Fatal("sale refused")
	}
	net.waitFor(t, 1, 5*time.Second)
	rebill := fixtureForm(t, "warriorplus_sale.form", "WP_SID", ref, "WP_ACTION", "subscr_completed", "IPN_ID", "ipn_rebill_2")
	rebill.Set("WP_SUBSCR_ID", "wpsub_77")
	rebill.Set("WP_SUBSCR_PAYMENT_NUM", "2")
	rebill.Set("WP_SUBSCR_PAYMENT_TXNID", "PAY-2")
	for _, n := range []string{
		rebill.Encode(),
		form("WP_ACTION", "refund", "IPN_ID", "ipn_refund_1"),
		sale, // the same notification again (a Key Generation URL sends each sale twice)
	} {
		if post(t, "/hooks/warriorplus", []byte(n), ct) != 200 {
			t.Fatalf("notification refused: %s", n)
		}
	}
	wantIPNPostbacks(t, net, "8812345", "PAY-2", "wso-svyh7b", "27.00")
}
