package webhook

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	"github.com/PaddleHQ/paddle-go-sdk/v4/pkg/paddlenotification"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// The official vector from paddle-go-sdk example_webhook_verifier_test.go.
const (
	paddleVectorSignature = `ts=1710929255;h1=6c05ef8fa83c44d751be6d259ec955ce5638e2c54095bf128e408e2fce1589c8`
	paddleVectorPayload   = `{"data":{"id":"pri_01hsdn96k2hxjzsq5yerecdj9j","name":null,"status":"active","quantity":{"maximum":999999,"minimum":1},"tax_mode":"account_setting","product_id":"pro_01hsdn8qp7yydry3x1yeg6a9rv","unit_price":{"amount":"1000","currency_code":"USD"},"custom_data":null,"description":"testing","import_meta":null,"trial_period":null,"billing_cycle":{"interval":"month","frequency":1},"unit_price_overrides":[]},"event_id":"evt_01hsdn97563968dy0szkmgjwh3","event_type":"price.created","occurred_at":"2024-03-20T10:07:35.590857Z","notification_id":"ntf_01hsdn977e920kbgzt6r6c9rqc"}`
	paddleVectorSecret    = `pdl_ntfset_01hsdn8d43dt7mezr1ef2jtbaw_hKkRiCGyyRhbFwIUuqiTBgI7gnWoV0Gr`
	paddleVectorTS        = 1710929255
)

func paddleReq(body []byte, sig string, now time.Time) *Request {
	return &Request{Header: hdr("Content-Type", "application/json", "Paddle-Signature", sig), Body: body, Now: now}
}

// TestPaddleSignerMatchesSDK checks this file's test signer against the
// SDK's verifier, so that the signatures below are ones Paddle would send.
func TestPaddleSignerMatchesSDK(t *testing.T) {
	if got := paddleSig(paddleVectorSecret, paddleVectorTS, []byte(paddleVectorPayload)); got != paddleVectorSignature {
		t.Fatalf("test signer gives %s", got)
	}
	body := fixture(t, "paddle_transaction_completed.json")
	hr, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	hr.Header.Set("Paddle-Signature", paddleSig("pdl_ntfset_other", time.Now().Unix(), body))
	ok, err := paddle.NewWebhookVerifier("pdl_ntfset_other").Verify(hr)
	if err != nil || !ok {
		t.Fatalf("SDK rejects the test signer: %v %v", ok, err)
	}
}

func TestPaddleVerify(t *testing.T) {
	const secret = paddleVectorSecret
	body := fixture(t, "paddle_transaction_completed.json")
	sig := func(ts time.Time) string { return paddleSig(secret, ts.Unix(), body) }
	h1 := func(s string) string { return s[strings.Index(s, "h1=")+3:] } // the hex of a paddleSig header
	vectorNow := time.Unix(paddleVectorTS+2, 0)
	tests := []struct {
		name    string
		secrets []string
		tol     time.Duration
		body    []byte
		sig     string
		ctype   string
		now     time.Time
		want    error
	}{
		{name: "official vector", body: []byte(paddleVectorPayload), sig: paddleVectorSignature, now: vectorNow},
		{name: "official vector, wrong secret", secrets: []string{"pdl_ntfset_wrong"}, body: []byte(paddleVectorPayload), sig: paddleVectorSignature, now: vectorNow, want: ErrSignature},
		{name: "official vector, spaces around", body: []byte(paddleVectorPayload), sig: " ts=1710929255; h1=6c05ef8fa83c44d751be6d259ec955ce5638e2c54095bf128e408e2fce1589c8 ", now: vectorNow},
		{name: "transaction", sig: sig(testNow)},
		{name: "two h1 during rotation, second valid", sig: "ts=" + strconv.FormatInt(testNow.Unix(), 10) + ";h1=" + h1(paddleSig("pdl_ntfset_old", testNow.Unix(), body)) + ";h1=" + h1(sig(testNow))},
		{name: "rotated secret list", secrets: []string{"pdl_ntfset_new", secret}, sig: sig(testNow)},
		{name: "unknown key ignored", sig: sig(testNow) + ";h2=abcd"},
		{name: "tampered", body: replace(t, body, `"grand_total":"5999"`, `"grand_total":"1"`), sig: sig(testNow), want: ErrSignature},
		{name: "timestamp swapped", sig: "ts=" + strconv.FormatInt(testNow.Unix()+1, 10) + ";h1=" + h1(sig(testNow)), want: ErrSignature},
		{name: "just inside tolerance", sig: sig(testNow.Add(-299 * time.Second))},
		{name: "stale", sig: sig(testNow.Add(-301 * time.Second)), want: ErrSignature},
		{name: "future beyond tolerance", sig: sig(testNow.Add(301 * time.Second)), want: ErrSignature},
		{name: "future within tolerance", sig: sig(testNow.Add(60 * time.Second))},
		{name: "SDK's 5s tolerance when asked", tol: 5 * time.Second, sig: sig(testNow.Add(-6 * time.Second)), want: ErrSignature},
		{name: "base64 instead of hex", sig: "ts=" + strconv.FormatInt(testNow.Unix(), 10) + ";h1=" + b64(hmacSHA256(secret, []byte(strconv.FormatInt(testNow.Unix(), 10)+":"), body)), want: ErrSignature},
		{name: "no h1", sig: "ts=" + strconv.FormatInt(testNow.Unix(), 10), want: ErrSignature},
		{name: "no ts", sig: "h1=" + h1(sig(testNow)), want: ErrSignature},
		{name: "bad ts", sig: "ts=-5;h1=" + h1(sig(testNow)), want: ErrSignature},
		{name: "garbage", sig: "garbage", want: ErrSignature},
		{name: "no header", sig: "", want: ErrSignature},
		{name: "wrong content type", sig: sig(testNow), ctype: "text/plain", want: ErrBadRequest},
		{name: "empty body", body: []byte{}, sig: sig(testNow), want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = body
			}
			now := tt.now
			if now.IsZero() {
				now = testNow
			}
			r := paddleReq(b, tt.sig, now)
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			checkVerify(t, NewPaddle, Config{Secrets: tt.secrets, Tolerance: tt.tol}, secret, r, tt.want)
		})
	}
}

// TestPaddleFixtureMatchesSDK reads the fixtures with the SDK's notification
// types, so the fields Parse uses mean what the SDK says.
func TestPaddleFixtureMatchesSDK(t *testing.T) {
	p, err := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	if err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "paddle_transaction_completed.json")
	var txn paddlenotification.TransactionCompleted
	if err := json.Unmarshal(body, &txn); err != nil {
		t.Fatal(err)
	}
	ev, err := p.Parse(&Request{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != txn.EventID || ev.Order.ID != txn.Data.ID {
		t.Errorf("event %q order %q, SDK %q %q", ev.ID, ev.Order.ID, txn.EventID, txn.Data.ID)
	}
	if got := strconv.FormatInt(ev.Order.Amount.Minor(ev.Order.Currency), 10); got != txn.Data.Details.Totals.GrandTotal || ev.Order.Currency != string(txn.Data.Details.Totals.CurrencyCode) {
		t.Errorf("amount %s %s, SDK %s %s", got, ev.Order.Currency, txn.Data.Details.Totals.GrandTotal, txn.Data.Details.Totals.CurrencyCode)
	}
	adj := fixture(t, "paddle_adjustment_refund.json")
	var a paddlenotification.AdjustmentUpdated
	if err := json.Unmarshal(adj, &a); err != nil {
		t.Fatal(err)
	}
	ev, err = p.Parse(&Request{Body: adj})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Order.ID != a.Data.TransactionID || string(a.Data.Action) != "refund" || string(a.Data.Status) != "approved" {
		t.Errorf("order %q, SDK %q %q %q", ev.Order.ID, a.Data.TransactionID, a.Data.Action, a.Data.Status)
	}
}

func TestPaddleParse(t *testing.T) {
	txn := fixture(t, "paddle_transaction_completed.json")
	adj := fixture(t, "paddle_adjustment_refund.json")
	const id = "txn_01hv8m0mnx3sj85e7gxc6kga03"
	tests := []struct {
		name   string
		body   []byte
		want   error
		kind   Kind
		amount string
		status order.Status
		check  func(t *testing.T, ev Event)
	}{
		{name: "official vector: price.created ignored", body: []byte(paddleVectorPayload), kind: KindIgnore,
			check: func(t *testing.T, ev Event) {
				if ev.ID != "evt_01hsdn97563968dy0szkmgjwh3" || ev.Topic != "price.created" {
					t.Errorf("event %q %q", ev.ID, ev.Topic)
				}
			}},
		{name: "transaction.completed", body: txn, kind: KindOrder, amount: "59.99", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if ev.ID != "evt_01hv8m8gzsxcnbx3hkcxfp0qyb" || o.SessionRef != "s1_UGFkZGxlU2Vzc2lvbg-sig" {
					t.Errorf("event %q session %q", ev.ID, o.SessionRef)
				}
				if o.ClickIDs["utm_source"] != "newsletter" || len(o.ClickIDs) != 1 {
					t.Errorf("click IDs %v", o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Date(2024, 4, 12, 7, 55, 20, 457287000, time.UTC)) {
					t.Errorf("occurred %v", o.OccurredAt)
				}
			}},
		{name: "transaction.paid is approved too", body: replace(t, txn, `"event_type":"transaction.completed"`, `"event_type":"transaction.paid"`),
			kind: KindOrder, amount: "59.99", status: order.StatusApproved},
		{name: "total when no grand_total", body: replace(t, txn, `"grand_total":"5999","fee"`, `"fee"`), kind: KindOrder, amount: "59.99", status: order.StatusApproved},
		{name: "null custom data", body: replace(t, txn, `"custom_data":{"pb_session":"s1_UGFkZGxlU2Vzc2lvbg-sig","utm_source":"newsletter"}`, `"custom_data":null`),
			kind: KindOrder, amount: "59.99", status: order.StatusApproved,
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != "" || ev.Order.ClickIDs != nil {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
			}},
		{name: "approved refund", body: adj, kind: KindStatus, amount: "59.99", status: order.StatusRefunded},
		{name: "chargeback", body: replace(t, adj, `"action":"refund"`, `"action":"chargeback"`), kind: KindStatus, amount: "59.99", status: order.StatusRefunded},
		{name: "refund pending approval", body: replace(t, adj, `"status":"approved"`, `"status":"pending_approval"`), kind: KindIgnore},
		{name: "credit adjustment", body: replace(t, adj, `"action":"refund"`, `"action":"credit"`), kind: KindIgnore},
		{name: "other event", body: replace(t, txn, `"event_type":"transaction.completed"`, `"event_type":"transaction.updated"`), kind: KindIgnore},
		{name: "no event type", body: replace(t, txn, `"event_type":"transaction.completed"`, `"event_type":null`), want: ErrMalformed},
		{name: "no transaction id", body: []byte(`{"event_id":"evt_1","event_type":"transaction.completed","data":{}}`), want: ErrMalformed},
		{name: "adjustment without transaction", body: []byte(`{"event_id":"evt_1","event_type":"adjustment.updated","data":{"action":"refund","status":"approved"}}`), want: ErrMalformed},
		{name: "invalid JSON", body: txn[:100], want: ErrMalformed},
	}
	p, err := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := p.Parse(&Request{Body: tt.body, Now: testNow})
			wantErr(t, err, tt.want)
			checkInvariants(t, p, ev, err)
			if err != nil {
				return
			}
			if ev.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v (reason %q)", ev.Kind, tt.kind, ev.Reason)
			}
			if ev.Kind == KindIgnore {
				if ev.Reason == "" {
					t.Error("ignored without a reason")
				}
			} else {
				checkOrder(t, ev.Order, id, tt.amount, "EUR", tt.status)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}
