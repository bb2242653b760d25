package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// testNow is the receipt time used by most tests.
var testNow = time.Unix(1_700_000_000, 0)

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// withContentType sets r's headers for a test case's ctype: "" keeps the
// request's own, "-" sends no headers at all, anything else is the
// Content-Type sent.
func withContentType(r *Request, ctype string) *Request {
	switch ctype {
	case "":
	case "-":
		r.Header = hdr()
	default:
		r.Header = hdr("Content-Type", ctype)
	}
	return r
}

func hmacSHA256(secret string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func b64(b []byte) string  { return base64.StdEncoding.EncodeToString(b) }
func hexs(b []byte) string { return hex.EncodeToString(b) }

// paddleSig signs body the way Paddle does: hex HMAC-SHA256 of "ts:body".
func paddleSig(secret string, ts int64, body []byte) string {
	t := strconv.FormatInt(ts, 10)
	return "ts=" + t + ";h1=" + hexs(hmacSHA256(secret, []byte(t+":"), body))
}

// replace swaps one occurrence of old in a fixture and fails when it is
// absent, so that a fixture edit cannot silently defeat a test.
func replace(tb testing.TB, body []byte, old, new string) []byte {
	tb.Helper()
	s := string(body)
	if !strings.Contains(s, old) {
		tb.Fatalf("fixture has no %q", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

// wantErr checks err against a sentinel (nil for success).
func wantErr(tb testing.TB, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("error = %v, want %v", err, want)
	}
}

// checkInvariants is what every Parse result must satisfy, whatever the
// input: a known sentinel on error, and a usable order for order and status
// parseCase parses req with p and checks the error against want (and the
// invariants every Parse keeps). When Parse succeeded it also checks the
// event's kind and returns the event with ok set, for the caller's own checks.
func parseCase(tb testing.TB, p Provider, req *Request, want error, kind Kind) (Event, bool) {
	tb.Helper()
	ev, err := p.Parse(req)
	wantErr(tb, err, want)
	checkInvariants(tb, p, ev, err)
	if err != nil {
		return ev, false
	}
	if ev.Kind != kind {
		tb.Fatalf("kind = %v, want %v (reason %q)", ev.Kind, kind, ev.Reason)
	}
	return ev, true
}

// events.
func checkInvariants(tb testing.TB, p Provider, ev Event, err error) {
	tb.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrSignature) {
			tb.Fatalf("error %v wraps no sentinel", err)
		}
		return
	}
	switch ev.Kind {
	case KindIgnore:
		return
	case KindOrder:
		if ev.Order.Status != order.StatusApproved && ev.Order.Status != order.StatusPending {
			tb.Fatalf("order event with status %q", ev.Order.Status)
		}
	case KindStatus:
		if ev.Order.Status != order.StatusRejected && ev.Order.Status != order.StatusRefunded {
			tb.Fatalf("status event with status %q", ev.Order.Status)
		}
	default:
		tb.Fatalf("unknown kind %v", ev.Kind)
	}
	if ev.Order.ID == "" {
		tb.Fatal("order event without order ID")
	}
	if ev.Order.Source != "webhook:"+p.Name() {
		tb.Fatalf("source %q", ev.Order.Source)
	}
	if ev.Order.Event == "" {
		tb.Fatal("order without event name")
	}
	if ev.Order.Currency != "" && order.NormalizeCurrency(ev.Order.Currency) != ev.Order.Currency {
		tb.Fatalf("currency %q not normalized", ev.Order.Currency)
	}
	if len(ev.Order.ClickIDs) > maxClickIDs {
		tb.Fatalf("%d click IDs", len(ev.Order.ClickIDs))
	}
}

// emailOf is the hashed (trimmed, lower-case) e-mail an order carries.
func emailOf(o order.Order) string {
	if o.Customer == nil {
		return ""
	}
	return o.Customer.Email
}

// amount parses a decimal for comparisons.
func amount(tb testing.TB, s string) order.Decimal {
	tb.Helper()
	d, err := order.ParseDecimal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// checkOrder compares the fields a test cares about.
func checkOrder(tb testing.TB, got order.Order, id, amt, cur string, st order.Status) {
	tb.Helper()
	if got.ID != id {
		tb.Errorf("order ID = %q, want %q", got.ID, id)
	}
	if amt == "" {
		if got.HasAmount {
			tb.Errorf("amount = %s, want none", got.Amount)
		}
	} else if !got.HasAmount || !got.Amount.Equal(amount(tb, amt)) {
		tb.Errorf("amount = %s (has %v), want %s", got.Amount, got.HasAmount, amt)
	}
	if got.Currency != cur {
		tb.Errorf("currency = %q, want %q", got.Currency, cur)
	}
	if got.Status != st {
		tb.Errorf("status = %q, want %q", got.Status, st)
	}
}

func containsSecret(msg string, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// checkVerify builds a provider from cfg (its secret defaultSecret when
// cfg has none), verifies r, and checks the result: the wanted error, and
// no secret in the error's message.
func checkVerify[P Provider](t *testing.T, build func(Config) (P, error), cfg Config, defaultSecret string, r *Request, want error) {
	t.Helper()
	if cfg.Secrets == nil {
		cfg.Secrets = []string{defaultSecret}
	}
	p, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Verify(r)
	wantErr(t, err, want)
	if err != nil && containsSecret(err.Error(), cfg.Secrets) {
		t.Fatalf("error leaks a secret: %v", err)
	}
}
