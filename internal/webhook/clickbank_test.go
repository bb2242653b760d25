package webhook

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const (
	// cbSecret is this package's own test secret key. With cbIV it
	// reproduces the self-made vector of reference/intake.md §1c.
	cbSecret = "TESTSECRET123456"
	// cbVectorSecret is the key of the public INS test vector in
	// testdata/clickbank_test_button.json (CentricWebEstate/clickbankgo,
	// test/data/example_key.txt and encrypted_payload.json): ClickBank's
	// "Test" button notification.
	cbVectorSecret = "G3B7H7T87J2E0VFN"
)

var cbIV = []byte("0123456789ABCDEF")

// cbKey derives the AES key as ClickBank's PHP sample does:
// substr(sha1($secretKey), 0, 32) used as the raw key.
func cbKey(secret string) []byte {
	sum := sha1.Sum([]byte(secret))
	return []byte(hex.EncodeToString(sum[:])[:32])
}

func pkcs7(b []byte) []byte {
	n := aes.BlockSize - len(b)%aes.BlockSize
	return append(append([]byte(nil), b...), bytes.Repeat([]byte{byte(n)}, n)...)
}

// cbSealRaw encrypts already padded bytes and wraps them in the INS
// envelope.
func cbSealRaw(tb testing.TB, secret string, iv, padded []byte) []byte {
	tb.Helper()
	block, err := aes.NewCipher(cbKey(secret))
	if err != nil {
		tb.Fatal(err)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	body, err := json.Marshal(map[string]string{"notification": b64(ct), "iv": b64(iv)})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// cbSeal encrypts a plaintext notification as ClickBank sends it.
func cbSeal(tb testing.TB, secret string, plaintext []byte) []byte {
	tb.Helper()
	return cbSealRaw(tb, secret, cbIV, pkcs7(plaintext))
}

func cbReq(body []byte) *Request {
	return &Request{Header: hdr("Content-Type", "application/json"), Body: body, Now: testNow}
}

func newClickBank(tb testing.TB, secrets ...string) *ClickBank {
	tb.Helper()
	if len(secrets) == 0 {
		secrets = []string{cbSecret}
	}
	p, err := NewClickBank(Config{Secrets: secrets})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestClickBankPublicVector decrypts ClickBank's own "Test" button
// notification with its published key.
func TestClickBankPublicVector(t *testing.T) {
	body := fixture(t, "clickbank_test_button.json")
	p := newClickBank(t, cbVectorSecret)
	if err := p.Verify(cbReq(body)); err != nil {
		t.Fatal(err)
	}
	plain, err := p.open(cbReq(body))
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Receipt, TransactionType, Vendor, Currency string
		TotalOrderAmount                           json.Number
		Customer                                   struct{ Billing struct{ Email string } }
	}
	if err := json.Unmarshal(plain, &n); err != nil {
		t.Fatal(err)
	}
	if n.Receipt != "********" || n.TransactionType != "SALE" || n.Vendor != "TestVendorNickname" ||
		n.Currency != "USD" || n.TotalOrderAmount != "1.00" || n.Customer.Billing.Email != "testuser@somesite.com" {
		t.Fatalf("decrypted %+v", n)
	}
	ev, ok := parseCase(t, p, cbReq(body), nil, KindIgnore)
	if ok && ev.Reason != "test notification" {
		t.Fatalf("reason %q", ev.Reason)
	}
	checkVerify(t, NewClickBank, Config{}, cbSecret, cbReq(body), ErrSignature)
}

// TestClickBankSelfVector decrypts the self-made vector of intake.md §1c,
// encrypted by the documented algorithm outside this package.
func TestClickBankSelfVector(t *testing.T) {
	const notification = "y/yosayKXA29704px+s6E/ckyHdxo+RIq9ThKNu7BdwcBjyoFgSXm/KkfgYfOtv2GoXPRhZIh+t58LUOTrUEP0TogG/SlFOFGsx4xmXDBw++LyrHLK8oTQe39neJMIR3O77rc+4kFMv0gL6HwATHfIpd6ZXNEt7EOURUGIq20LXBy8SGwNTwCIT6ai5sjPG25iBuS3IAPg1ZkUna5xKdks5rgaYH/Ke+ymXBeaCKD1KgjONgvY4GDG5Ib4+qmrksk/WiiFpi5Xet/3hSoCnTCkPsbSjaOuv2DpglsyKDeflDvXOrCvursn/2jYDfNFXlIgI0snXI9A8WxlrV4h5Occ/kXJy1o8TWkunTDWRkOPF6AvPCx9Td3V1nCwY5IApzgqvMqnP0lqGNt42DqxP1eKeJ3aGv/RW1DsK9EZbOTYmEIHyq3YWo1BEmtvROhwO7WeX3fV8OWl1nH4Svr+K66khpqr4zdfCcEN2n1S+Oxqz9nWs2sAYBX/KeEYrEGC/UdnOrwMps16aghqRnnmRbaFW0EH9ZgkMcogBaj5ybO1ceLNLLkvyxd1pp6iN9uA5u38Wq1qRc84t7E0sOBJrfDz9DGQTRSJcMrUbcLPA9i6hr5G7Bm6gwwetiv60XEJFwOriF7+kl6qyo9XSdt6DDd8EL60GKMZDixbshNib4xqIV9bVF6VDLgpEsTfqk/UpbwL3DIxmo7O3uR8J60ZNWZwlvojkdicDTbvnLOXnuqY4="
	body := []byte(`{"notification":"` + notification + `","iv":"MDEyMzQ1Njc4OUFCQ0RFRg=="}`)
	p := newClickBank(t)
	ev, ok := parseCase(t, p, cbReq(body), nil, KindOrder)
	if !ok {
		return
	}
	o := ev.Order
	checkOrder(t, o, "TESTRCPT", "19.99", "USD", order.StatusApproved)
	if ev.Reason != "test notification" || len(o.Problems) != 1 || o.Problems[0] != "test notification" {
		t.Errorf("reason %q problems %v", ev.Reason, o.Problems)
	}
	if o.ClickIDs["tid"] != "abc+/=" || o.ClickIDs["cid"] != "Zm9v+YmFy/YQ==" || o.SessionRef != "" {
		t.Errorf("click IDs %v session %q", o.ClickIDs, o.SessionRef)
	}
	if !o.OccurredAt.Equal(time.Date(2024, 6, 10, 19, 0, 0, 0, time.UTC)) {
		t.Errorf("occurred at %v", o.OccurredAt)
	}
	if err := p.Verify(cbReq(bytes.Replace(body, []byte("MDEy"), []byte("MTEy"), 1))); err == nil {
		t.Error("a changed IV still verifies: the first block no longer decrypts to JSON")
	}
}

func TestClickBankVerify(t *testing.T) {
	sale := fixture(t, "clickbank_sale.json")
	good := cbSeal(t, cbSecret, sale)
	env := func(n, iv string) []byte {
		b, _ := json.Marshal(map[string]string{"notification": n, "iv": iv})
		return b
	}
	var ct string
	{
		var e map[string]string
		_ = json.Unmarshal(good, &e)
		ct = e["notification"]
	}
	raw, _ := base64.StdEncoding.DecodeString(ct)
	badPad := pkcs7(sale)
	badPad[len(badPad)-2] ^= 0x01 // last two pad bytes now differ
	tests := []struct {
		name    string
		secrets []string
		body    []byte
		ctype   string
		want    error
	}{
		{name: "sealed with the secret", body: good},
		{name: "rotated secrets, second matches", secrets: []string{"OLDSECRETKEY0001", cbSecret}, body: good},
		{name: "no content type", body: good, ctype: "-"},
		{name: "form content type with a JSON body", body: good, ctype: "application/x-www-form-urlencoded"},
		{name: "form envelope", body: []byte(url.Values{"notification": {ct}, "iv": {b64(cbIV)}}.Encode()), ctype: "application/x-www-form-urlencoded"},
		{name: "wrong secret", secrets: []string{"ANOTHERSECRET999"}, body: good, want: ErrSignature},
		{name: "empty body", body: nil, want: ErrBadRequest},
		{name: "JSON without notification", body: []byte(`{"id":"evt_1","type":"checkout.session.completed"}`), want: ErrBadRequest},
		{name: "invalid JSON", body: []byte(`{"notification":`), want: ErrBadRequest},
		{name: "legacy form notification", body: []byte("ctransreceipt=ABC&ctransaction=SALE&cverify=0D425C3D"), ctype: "application/x-www-form-urlencoded", want: ErrBadRequest},
		{name: "neither JSON nor form", body: []byte("%zz"), want: ErrBadRequest},
		{name: "no iv", body: []byte(`{"notification":"` + ct + `"}`), want: ErrSignature},
		{name: "iv of 12 bytes", body: env(ct, b64(cbIV[:12])), want: ErrSignature},
		{name: "iv not base64", body: env(ct, "!!!!"), want: ErrSignature},
		{name: "notification not base64", body: env("not*base64", b64(cbIV)), want: ErrSignature},
		{name: "ciphertext cut mid-block", body: env(b64(raw[:len(raw)-5]), b64(cbIV)), want: ErrSignature},
		{name: "ciphertext cut by a block", body: env(b64(raw[:len(raw)-16]), b64(cbIV)), want: ErrSignature},
		{name: "ciphertext of one block", body: env(b64(raw[:16]), b64(cbIV)), want: ErrSignature},
		{name: "bad padding", body: cbSealRaw(t, cbSecret, cbIV, badPad), want: ErrSignature},
		{name: "pad byte zero", body: cbSealRaw(t, cbSecret, cbIV, append(pkcs7(sale)[:len(sale)], make([]byte, aes.BlockSize-len(sale)%aes.BlockSize)...)), want: ErrSignature},
		{name: "decrypts to text, not JSON", body: cbSeal(t, cbSecret, []byte("receipt=K7XQ2M9R")), want: ErrSignature},
		{name: "decrypts to a JSON array", body: cbSeal(t, cbSecret, []byte(`[{"receipt":"K7XQ2M9R"}]`)), want: ErrSignature},
		{name: "decrypts to invalid UTF-8", body: cbSeal(t, cbSecret, []byte("{\"receipt\":\"K7\xffQ\",\"transactionType\":\"SALE\"}")), want: ErrSignature},
		{name: "decrypts to a top-level key named twice", body: cbSeal(t, cbSecret, []byte(`{"receipt":"FORGED","transactionType":"SALE","receipt":"K7XQ2M9R"}`)), want: ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withContentType(cbReq(tt.body), tt.ctype)
			checkVerify(t, NewClickBank, Config{Secrets: tt.secrets}, cbSecret, r, tt.want)
		})
	}
}

// TestClickBankNoPaddingOracle: whether the padding, the JSON or the key
// was wrong, the answer is the same, so the endpoint cannot be used to
// decrypt a captured notification block by block.
func TestClickBankNoPaddingOracle(t *testing.T) {
	sale := fixture(t, "clickbank_sale.json")
	badPad := pkcs7(sale)
	badPad[len(badPad)-1] = 0x11
	p := newClickBank(t)
	var msgs []string
	for _, body := range [][]byte{
		cbSealRaw(t, cbSecret, cbIV, badPad),
		cbSeal(t, cbSecret, []byte("not json at all")),
		cbSeal(t, "ANOTHERSECRET999", sale),
	} {
		err := p.Verify(cbReq(body))
		wantErr(t, err, ErrSignature)
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Fatalf("failures are told apart:\n%s", strings.Join(msgs, "\n"))
	}
}

func TestUnpadPKCS7(t *testing.T) {
	block := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{'x'}, 2*aes.BlockSize-len(tail))
		return append(b, tail...)
	}
	tests := []struct {
		name string
		in   []byte
		n    int
		ok   int
	}{
		{"one byte", block(1), 31, 1},
		{"two bytes", block(2, 2), 30, 1},
		{"full block", block(bytes.Repeat([]byte{16}, 16)...), 16, 1},
		{"zero", block(0), 32, 0},
		{"seventeen", block(bytes.Repeat([]byte{17}, 17)...), 32, 0},
		{"longer byte before the padding", block(3, 2, 2), 30, 1},
		{"mismatch inside", block(2, 3, 3), 32, 0},
		{"255", block(255), 32, 0},
	}
	for _, tt := range tests {
		n, ok := unpadPKCS7(tt.in)
		if n != tt.n || ok != tt.ok {
			t.Errorf("%s: got (%d, %d), want (%d, %d)", tt.name, n, ok, tt.n, tt.ok)
		}
	}
}

func TestClickBankParse(t *testing.T) {
	sale := fixture(t, "clickbank_sale.json")
	ref := strings.Repeat("AbC-_9", 10) + "zz" // 62 characters of base64url
	edit := func(pairs ...string) []byte {
		b := sale
		for i := 0; i+1 < len(pairs); i += 2 {
			b = replace(t, b, pairs[i], pairs[i+1])
		}
		return b
	}
	asType := func(txType string, pairs ...string) []byte {
		return edit(append([]string{`"transactionType":"SALE"`, `"transactionType":"` + txType + `"`}, pairs...)...)
	}
	tests := []struct {
		name     string
		plain    []byte
		want     error
		kind     Kind
		id       string
		amount   string
		status   order.Status
		event    string
		original string
		reason   string
		problems []string
		cur      string
		check    func(t *testing.T, ev Event)
	}{
		{name: "sale", plain: sale, kind: KindOrder, id: "K7XQ2M9R", amount: "47.00", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if emailOf(o) != order.Hash("buyer@example.com") || o.SessionRef != "s1_ClickBankSessionReference_sig" {
					t.Errorf("email %q session %q", emailOf(o), o.SessionRef)
				}
				if len(o.ClickIDs) != 2 || o.ClickIDs["gclid"] != "Cj0KCQiA-cb_1" || o.ClickIDs["tid"] != "fb_adset_12" {
					t.Errorf("click IDs %v", o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Date(2024, 6, 10, 19, 0, 0, 0, time.UTC)) {
					t.Errorf("occurred at %v", o.OccurredAt)
				}
				if ev.ID != "K7XQ2M9R:SALE:VENDOR:20240610T120000-0700" || o.EventID != ev.ID || ev.Topic != "SALE" {
					t.Errorf("event ID %q topic %q", ev.ID, ev.Topic)
				}
			}},
		{name: "session reference in the HopLink tid", plain: edit(`"trackingCodes":["fb_adset_12"]`, `"trackingCodes":["`+EncodeTID(ref)+`","fb_adset_12"]`, `"pb_session":"s1_ClickBankSessionReference_sig",`, ``),
			kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != ref || ev.Order.ClickIDs["tid"] != "fb_adset_12" {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
			}},
		{name: "tid folded to upper case still decodes", plain: edit(`"trackingCodes":["fb_adset_12"]`, `"trackingCodes":["`+strings.ToUpper(EncodeTID(ref))+`"]`, `"pb_session":"s1_ClickBankSessionReference_sig",`, ``),
			kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != ref {
					t.Errorf("session %q", ev.Order.SessionRef)
				}
			}},
		{name: "upsell credited like the sale it follows", plain: edit(`"upsellFlowId":44874`, `"upsellOriginalReceipt":"FRONT123","upsellFlowId":44874`, `"receipt":"K7XQ2M9R"`, `"receipt":"UPSELL99"`),
			kind: KindOrder, id: "UPSELL99", amount: "47", status: order.StatusApproved, event: "purchase", original: "FRONT123"},
		{name: "rebill", plain: asType("BILL", `"receipt":"K7XQ2M9R"`, `"receipt":"K7XQ2M9R-B002"`),
			kind: KindOrder, id: "K7XQ2M9R-B002", amount: "47", status: order.StatusApproved, event: order.EventRebill, original: "K7XQ2M9R"},
		{name: "rebill without suffix", plain: asType("BILL"),
			kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: order.EventRebill, original: "K7XQ2M9R",
			problems: []string{"rebill receipt has no -B<n> suffix: credited to the sale with the same receipt"}},
		{name: "refund with a negative total", plain: asType("RFND", `"totalOrderAmount":47.00`, `"totalOrderAmount":-47.00`),
			kind: KindStatus, id: "K7XQ2M9R", amount: "47", status: order.StatusRefunded, event: "purchase"},
		{name: "refund of a rebill", plain: asType("RFND", `"receipt":"K7XQ2M9R"`, `"receipt":"K7XQ2M9R-B003"`),
			kind: KindStatus, id: "K7XQ2M9R-B003", amount: "47", status: order.StatusRefunded, event: order.EventRebill, original: "K7XQ2M9R"},
		{name: "chargeback", plain: asType("CGBK"), kind: KindStatus, id: "K7XQ2M9R", amount: "47", status: order.StatusRefunded, event: "purchase",
			reason: "chargeback", problems: []string{"chargeback"}},
		{name: "insufficient funds", plain: asType("INSF"), kind: KindStatus, id: "K7XQ2M9R", amount: "47", status: order.StatusRejected, event: "purchase",
			reason: "insufficient funds"},
		{name: "test purchase", plain: asType("TEST_SALE"), kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: "purchase",
			reason: "test notification", problems: []string{"test notification"}},
		{name: "test rebill", plain: asType("TEST_BILL", `"receipt":"K7XQ2M9R"`, `"receipt":"K7XQ2M9R-B001"`), kind: KindOrder, id: "K7XQ2M9R-B001", amount: "47",
			status: order.StatusApproved, event: order.EventRebill, original: "K7XQ2M9R", reason: "test notification", problems: []string{"test notification"}},
		{name: "test refund", plain: asType("TEST_RFND"), kind: KindStatus, id: "K7XQ2M9R", amount: "47", status: order.StatusRefunded, event: "purchase",
			reason: "test notification", problems: []string{"test notification"}},
		{name: "test button", plain: edit(`"receipt":"K7XQ2M9R"`, `"receipt":"********"`), kind: KindIgnore, reason: "test notification"},
		{name: "TEST type", plain: asType("TEST"), kind: KindIgnore, reason: "test notification"},
		{name: "cancelled subscription", plain: asType("CANCEL-REBILL"), kind: KindIgnore, reason: "subscription cancelled: no money moved"},
		{name: "cancelled test subscription", plain: asType("CANCEL-TEST-REBILL"), kind: KindIgnore, reason: "subscription cancelled: no money moved"},
		{name: "resumed subscription", plain: asType("UNCANCEL-REBILL"), kind: KindIgnore, reason: "subscription resumed: no money moved"},
		{name: "abandoned cart", plain: asType("ABANDONED_ORDER"), kind: KindIgnore, reason: `transaction type "ABANDONED_ORDER" not used`},
		{name: "amount in exponent form", plain: edit(`"totalOrderAmount":47.00`, `"totalOrderAmount":4.7e1`), kind: KindOrder, id: "K7XQ2M9R", status: order.StatusApproved, event: "purchase",
			problems: []string{`totalOrderAmount: bad amount: "4.7e1"`}},
		{name: "amount keeps every digit", plain: edit(`"totalOrderAmount":47.00`, `"totalOrderAmount":19.99`), kind: KindOrder, id: "K7XQ2M9R", amount: "19.99", status: order.StatusApproved, event: "purchase"},
		{name: "currency in lower case", plain: edit(`"currency":"USD"`, `"currency":"eur"`), kind: KindOrder, id: "K7XQ2M9R", amount: "47", cur: "EUR", status: order.StatusApproved, event: "purchase"},
		{name: "shipping e-mail when billing has none", plain: edit(`"email":"buyer@example.com"`, `"email":""`), kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				if emailOf(ev.Order) != order.Hash("ship@example.com") {
					t.Errorf("email %q", emailOf(ev.Order))
				}
			}},
		{name: "RFC 3339 time (version 6.0)", plain: edit(`"20240610T120000-0700"`, `"2023-07-28T02:07:57+00:00"`), kind: KindOrder, id: "K7XQ2M9R", amount: "47", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				if !ev.Order.OccurredAt.Equal(time.Date(2023, 7, 28, 2, 7, 57, 0, time.UTC)) {
					t.Errorf("occurred at %v", ev.Order.OccurredAt)
				}
			}},
		{name: "no receipt", plain: edit(`"receipt":"K7XQ2M9R",`, ``), want: ErrMalformed},
		{name: "receipt not a string", plain: edit(`"receipt":"K7XQ2M9R"`, `"receipt":12345678`), want: ErrMalformed},
		{name: "no transaction type", plain: edit(`"transactionType":"SALE",`, ``), want: ErrMalformed},
		{name: "huge receipt", plain: edit(`"receipt":"K7XQ2M9R"`, `"receipt":"`+strings.Repeat("R", 4096)+`"`), want: ErrMalformed},
		{name: "receipt with a control character", plain: edit(`"receipt":"K7XQ2M9R"`, `"receipt":"K7\u0000Q"`), want: ErrMalformed},
	}
	p := newClickBank(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, cbReq(cbSeal(t, cbSecret, tt.plain)), tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Reason != tt.reason {
				t.Errorf("reason %q, want %q", ev.Reason, tt.reason)
			}
			if tt.kind == KindIgnore {
				return
			}
			cur := tt.cur
			if cur == "" {
				cur = "USD"
			}
			checkOrder(t, ev.Order, tt.id, tt.amount, cur, tt.status)
			if ev.Order.Event != tt.event || ev.Order.OriginalID != tt.original {
				t.Errorf("event %q original %q, want %q %q", ev.Order.Event, ev.Order.OriginalID, tt.event, tt.original)
			}
			if got := append(append([]string{}, ev.Order.Problems...), ev.Order.Invalid...); strings.Join(got, "; ") != strings.Join(tt.problems, "; ") {
				t.Errorf("problems and invalid values %q, want %q", got, tt.problems)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// TestClickBankRetries: a notification sent again (ClickBank raises
// attemptCount, and encrypts with a fresh IV) is the same event; the
// refund of the same receipt is another.
func TestClickBankRetries(t *testing.T) {
	sale := fixture(t, "clickbank_sale.json")
	p := newClickBank(t)
	first, err := p.Parse(cbReq(cbSeal(t, cbSecret, sale)))
	if err != nil {
		t.Fatal(err)
	}
	retry := replace(t, sale, `"attemptCount":1`, `"attemptCount":2`)
	again, err := p.Parse(cbReq(cbSealRaw(t, cbSecret, []byte("FEDCBA9876543210"), pkcs7(retry))))
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || again.ID != first.ID {
		t.Fatalf("retry has event ID %q, first %q", again.ID, first.ID)
	}
	refund, err := p.Parse(cbReq(cbSeal(t, cbSecret, replace(t, sale, `"transactionType":"SALE"`, `"transactionType":"RFND"`))))
	if err != nil {
		t.Fatal(err)
	}
	if refund.ID == first.ID || refund.Order.ID != first.Order.ID {
		t.Fatalf("refund event %q order %q; sale event %q order %q", refund.ID, refund.Order.ID, first.ID, first.Order.ID)
	}
	affiliate, err := p.Parse(cbReq(cbSeal(t, cbSecret, replace(t, sale, `"role":"VENDOR"`, `"role":"AFFILIATE"`))))
	if err != nil {
		t.Fatal(err)
	}
	if affiliate.ID == first.ID {
		t.Fatalf("the affiliate's notification of the receipt shares the vendor's event ID %q", first.ID)
	}
}

// TestClickBankHugeFields: oversized pass-through data is bounded, not
// copied whole.
func TestClickBankHugeFields(t *testing.T) {
	sale := fixture(t, "clickbank_sale.json")
	var vars, codes strings.Builder
	for i := range 5000 {
		if i > 0 {
			vars.WriteByte(',')
			codes.WriteByte(',')
		}
		vars.WriteString(`"k` + strconv.Itoa(i) + `":"v"`)
		codes.WriteString(`"code` + strconv.Itoa(i) + `"`)
	}
	plain := replace(t, sale, `"pb_session":"s1_ClickBankSessionReference_sig","gclid":"Cj0KCQiA-cb_1"`, vars.String())
	plain = replace(t, plain, `"trackingCodes":["fb_adset_12"]`, `"trackingCodes":[`+codes.String()+`]`)
	plain = replace(t, plain, `"email":"buyer@example.com"`, `"email":"`+strings.Repeat("a", 200_000)+`@example.com"`)
	p := newClickBank(t)
	ev, ok := parseCase(t, p, cbReq(cbSeal(t, cbSecret, plain)), nil, KindOrder)
	if !ok {
		return
	}
	if n := len(ev.Order.ClickIDs); n != maxClickIDs {
		t.Fatalf("%d click IDs", n)
	}
	big := make([]byte, maxClickBankNotification+aes.BlockSize)
	err := p.Verify(cbReq(cbSealRaw(t, cbSecret, cbIV, big)))
	wantErr(t, err, ErrSignature)
	if !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v", err)
	}
}
