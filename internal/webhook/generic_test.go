package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const genericBody = `{"type":"order.paid","id":"del_77","order":{"number":"A-1001","total":"1,234.50","currency":"eur","state":"paid","email":"a@example.com","coupon":"X10","ref":"s1_generic"}}`

func genericCfg() GenericConfig {
	return GenericConfig{
		Config:       Config{Secrets: []string{"generic_secret"}},
		Name:         "myshop",
		Header:       "X-Hub-Signature-256",
		Prefix:       "sha256=",
		OrderIDPath:  "order.number",
		AmountPath:   "order.total",
		CurrencyPath: "order.currency",
		EventPath:    "type",
		EventIDPath:  "id",
		StatusPath:   "order.state",
		StatusMap:    map[string]string{"paid": "approved", "awaiting": "pending", "void": "rejected", "returned": "refunded", "draft": "ignore"},
		SessionPath:  "order.ref",
		EmailPath:    "order.email",
		CouponPath:   "order.coupon",
	}
}

func TestGenericVerify(t *testing.T) {
	body := []byte(genericBody)
	sha256Hex := "sha256=" + hexs(hmacSHA256("generic_secret", body))
	ts := strconv.FormatInt(testNow.Unix(), 10)
	tsSig := func(ts string, secret string) string {
		m := hmac.New(sha512.New, []byte(secret))
		m.Write([]byte("v1:" + ts + ":"))
		m.Write(body)
		return b64(m.Sum(nil))
	}
	timed := func(c *GenericConfig) {
		c.Header, c.Prefix, c.Algorithm, c.Encoding = "X-Sig", "", "sha512", "base64"
		c.TimestampHeader, c.SignedPayload = "X-Timestamp", "v1:{ts}:{body}"
	}
	tests := []struct {
		name string
		cfg  func(c *GenericConfig)
		hdr  []string
		body string
		want error
	}{
		{name: "sha256 hex with prefix", hdr: []string{"X-Hub-Signature-256", sha256Hex}},
		{name: "prefix case-insensitive", hdr: []string{"X-Hub-Signature-256", "SHA256=" + sha256Hex[7:]}},
		{name: "several signatures, one valid", hdr: []string{"X-Hub-Signature-256", "sha256=00, " + sha256Hex}},
		{name: "rotated secret", cfg: func(c *GenericConfig) { c.Secrets = []string{"new_one", "generic_secret"} }, hdr: []string{"X-Hub-Signature-256", sha256Hex}},
		{name: "wrong secret", cfg: func(c *GenericConfig) { c.Secrets = []string{"other"} }, hdr: []string{"X-Hub-Signature-256", sha256Hex}, want: ErrSignature},
		{name: "sha1", cfg: func(c *GenericConfig) { c.Algorithm, c.Prefix = "sha1", "" }, hdr: []string{"X-Hub-Signature-256", func() string {
			m := hmac.New(sha1.New, []byte("generic_secret"))
			m.Write(body)
			return hexs(m.Sum(nil))
		}()}},
		{name: "sha256 signature when sha1 configured", cfg: func(c *GenericConfig) { c.Algorithm = "sha1" }, hdr: []string{"X-Hub-Signature-256", sha256Hex}, want: ErrSignature},
		{name: "timestamped", cfg: timed, hdr: []string{"X-Sig", tsSig(ts, "generic_secret"), "X-Timestamp", ts}},
		{name: "timestamp in milliseconds", cfg: timed, hdr: []string{"X-Sig", tsSig(ts+"123", "generic_secret"), "X-Timestamp", ts + "123"}},
		{name: "timestamp swapped", cfg: timed, hdr: []string{"X-Sig", tsSig(ts, "generic_secret"), "X-Timestamp", strconv.FormatInt(testNow.Unix()-1, 10)}, want: ErrSignature},
		{name: "stale timestamp", cfg: timed, hdr: func() []string {
			old := strconv.FormatInt(testNow.Add(-10*time.Minute).Unix(), 10)
			return []string{"X-Sig", tsSig(old, "generic_secret"), "X-Timestamp", old}
		}(), want: ErrSignature},
		{name: "future timestamp", cfg: timed, hdr: func() []string {
			f := strconv.FormatInt(testNow.Add(10*time.Minute).Unix(), 10)
			return []string{"X-Sig", tsSig(f, "generic_secret"), "X-Timestamp", f}
		}(), want: ErrSignature},
		{name: "missing timestamp", cfg: timed, hdr: []string{"X-Sig", tsSig(ts, "generic_secret")}, want: ErrSignature},
		{name: "no signature", want: ErrSignature},
		{name: "insecure", cfg: func(c *GenericConfig) { c.Secrets, c.Insecure = nil, true }},
		{name: "insecure still checks content type", cfg: func(c *GenericConfig) { c.Secrets, c.Insecure = nil, true }, hdr: []string{"Content-Type", "text/plain"}, want: ErrBadRequest},
		{name: "empty body", hdr: []string{"X-Hub-Signature-256", sha256Hex}, body: "-", want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := genericCfg()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, err := NewGeneric(cfg)
			if err != nil {
				t.Fatal(err)
			}
			b := body
			if tt.body == "-" {
				b = nil
			}
			err = p.Verify(&Request{Header: hdr(tt.hdr...), Body: b, Now: testNow})
			wantErr(t, err, tt.want)
			if err != nil && containsSecret(err.Error(), cfg.Secrets) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestGenericParse(t *testing.T) {
	state := func(s string) []byte {
		return []byte(strings.Replace(genericBody, `"state":"paid"`, `"state":"`+s+`"`, 1))
	}
	tests := []struct {
		name   string
		cfg    func(c *GenericConfig)
		body   []byte
		want   error
		kind   Kind
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "paid", body: []byte(genericBody), kind: KindOrder, status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				checkOrder(t, o, "A-1001", "1234.50", "EUR", order.StatusApproved)
				if ev.ID != "del_77" || ev.Topic != "order.paid" || o.Source != "webhook:myshop" {
					t.Errorf("event %q %q source %q", ev.ID, ev.Topic, o.Source)
				}
				if o.SessionRef != "s1_generic" || emailOf(o) != order.Hash("a@example.com") || o.Coupon != "X10" {
					t.Errorf("session %q email %q coupon %q", o.SessionRef, emailOf(o), o.Coupon)
				}
			}},
		{name: "pending", body: state("awaiting"), kind: KindOrder, status: order.StatusPending},
		{name: "void", body: state("void"), kind: KindStatus, status: order.StatusRejected},
		{name: "returned", body: state("returned"), kind: KindStatus, status: order.StatusRefunded},
		{name: "raw status name needs no mapping", body: state("refunded"), kind: KindStatus, status: order.StatusRefunded},
		{name: "ignore mapping", body: state("draft"), kind: KindIgnore},
		{name: "unmapped status", body: state("weird"), kind: KindIgnore},
		{name: "no status path: approved", cfg: func(c *GenericConfig) { c.StatusPath = "" }, body: state("weird"), kind: KindOrder, status: order.StatusApproved},
		{name: "event allow-list", cfg: func(c *GenericConfig) { c.Events = []string{"order.created"} }, body: []byte(genericBody), kind: KindIgnore},
		{name: "minor units", cfg: func(c *GenericConfig) { c.AmountPath, c.AmountMinor = "cents", true },
			body: []byte(`{"order":{"number":7,"currency":"usd","state":"paid"},"cents":1999}`), kind: KindOrder, status: order.StatusApproved,
			check: func(t *testing.T, ev Event) { checkOrder(t, ev.Order, "7", "19.99", "USD", order.StatusApproved) }},
		{name: "numeric amount", body: []byte(`{"order":{"number":"7","total":49.9,"currency":"usd","state":"paid"}}`), kind: KindOrder, status: order.StatusApproved,
			check: func(t *testing.T, ev Event) { checkOrder(t, ev.Order, "7", "49.90", "USD", order.StatusApproved) }},
		{name: "no order id", body: []byte(`{"order":{"state":"paid"}}`), want: ErrMalformed},
		{name: "invalid JSON", body: []byte(`{"order":`), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := genericCfg()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, err := NewGeneric(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse(&Request{Body: tt.body, Now: testNow})
			wantErr(t, err, tt.want)
			checkInvariants(t, p, ev, err)
			if err != nil {
				return
			}
			if ev.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v (reason %q)", ev.Kind, tt.kind, ev.Reason)
			}
			if ev.Kind == KindIgnore && ev.Reason == "" {
				t.Error("ignored without a reason")
			}
			if ev.Kind != KindIgnore && ev.Order.Status != tt.status {
				t.Errorf("status %q, want %q", ev.Order.Status, tt.status)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
