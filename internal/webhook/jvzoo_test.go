package webhook

import (
	"crypto/sha1"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

const jvzSecret = "MySecretKey123"

// jvzooSignV1 appends cverify as JVZoo's PHP sample computes it: every
// posted value but cverify, sorted by field name, joined with "|" after
// each, then the secret; SHA-1; first 8 hex digits upper-cased.
func jvzooSignV1(tb testing.TB, body, secret string) string {
	tb.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		tb.Fatal(err)
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pop := ""
	for _, k := range keys {
		pop += form.Get(k) + "|"
	}
	sum := sha1.Sum([]byte(pop + secret))
	return body + "&cverify=" + strings.ToUpper(hex.EncodeToString(sum[:])[:8])
}

// jvzooSignV2 appends cverify over paykey|customer_email|product_name|
// transaction_type|date|secret.
func jvzooSignV2(tb testing.TB, body, secret string) string {
	tb.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		tb.Fatal(err)
	}
	pop := strings.Join([]string{form.Get("paykey"), form.Get("customer_email"), form.Get("product_name"), form.Get("transaction_type"), form.Get("date"), secret}, "|")
	sum := sha1.Sum([]byte(pop))
	return body + "&cverify=" + strings.ToUpper(hex.EncodeToString(sum[:])[:8])
}

func jvzReq(body string) *Request {
	return &Request{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Body: []byte(body), Now: testNow}
}

// editForm sets fields of a form body; the value "\x00" deletes the field.
// Every field named must exist, so that a fixture edit cannot silently
// defeat a test.
func editForm(tb testing.TB, body string, kv ...string) string {
	tb.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if !form.Has(kv[i]) {
			tb.Fatalf("form has no %q", kv[i])
		}
		if kv[i+1] == "\x00" {
			form.Del(kv[i])
		} else {
			form.Set(kv[i], kv[i+1])
		}
	}
	return form.Encode()
}

// TestCverifyVectors checks the check-sum against values computed by the
// platforms and published with the secret.
func TestCverifyVectors(t *testing.T) {
	t.Run("JVZoo, niteoweb.ipn.jvzoo test", func(t *testing.T) {
		got := cverifyAll(url.Values{"ccustname": {"fullname"}, "cverify": {"x"}}, "secret")
		if string(got[:]) != "38CFCDED" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("ClickBank INS 4.0, django-clickbank TEST_POST_2", func(t *testing.T) {
		// ClickBank's form notifications used the algorithm JVZoo copied.
		form := url.Values{}
		for _, kv := range strings.Split("caccountamount=100|cnoticeversion=4.0|cbf=|ctranspaymentmethod=VISA|corderamount=100|ctaxamount=0|"+
			"ccustzip=|ctransreceipt=********|ccustfullname=Test User|ctid=|corderlanguage=|ccustcounty=|ccustcc=|ccuststate=|cbfpath=|"+
			"cfuturepayments=|crebillamnt=|ccustaddr2=|cshippingamount=0|ctransaction=TEST|ctransvendor=csmsurvive|ccustshippingzip=|"+
			"ctransaffiliate=|ccustemail=testuser@somesite.com|cupsellreceipt=|cprodtitle=A passed in title|ctransrole=VENDOR|"+
			"crebillstatus=|cbfid=|cvendthru=|cprodtype=STANDARD|ccustfirstname=TEST|ctranstime=1383333571|ccurrency=USD|"+
			"cprocessedpayments=|ccustshippingcountry=|ccustlastname=USER|cnextpaymentdate=|cproditem=1|ccustaddr1=|ccustcity=|"+
			"crebillfrequency=|ccustshippingstate=|cverify=007806EC", "|") {
			k, v, _ := strings.Cut(kv, "=")
			form.Set(k, v)
		}
		got := cverifyAll(form, "76AFC0778E648BDA05705047BAFA96ED")
		if string(got[:]) != form.Get("cverify") {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("JVZIPN v1, intake.md self-made (UTF-8, empty field, ctranstime)", func(t *testing.T) {
		form, err := url.ParseQuery("caffitid=fbadset12&ccustcc=US&ccustemail=buyer%40example.com&ccustname=Jane%20Doe&ccuststate=CA&cproditem=123456&cprodtitle=Widget%20Pro%20%E2%80%93%20Deluxe&cprodtype=STANDARD&ctransaction=SALE&ctransaffiliate=987654&ctransamount=47.00&ctranspaymentmethod=PYPL&ctransreceipt=ABCDEFGHJKLMNPQRS&ctranstime=1700000000&ctransvendor=1234567&cupsellreceipt=&cvendthru=sub%3Da%2Bb%2Fc%3D%26x%3D1")
		if err != nil {
			t.Fatal(err)
		}
		if got := cverifyAll(form, jvzSecret); string(got[:]) != "0D425C3D" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("JVZIPN v2, intake.md self-made", func(t *testing.T) {
		got := cverifyFields(jvzSecret, "AP-ABC123XYZ", "buyer@example.com", "Widget Pro", "SALE", "2024-04-06 14:22:10")
		if string(got[:]) != "2E7D77C0" {
			t.Fatalf("got %s", got)
		}
	})
}

func TestJVZooVerify(t *testing.T) {
	v1 := string(fixture(t, "jvzoo_v1_sale.form"))
	v2 := string(fixture(t, "jvzoo_v2_sale.form"))
	signed1 := jvzooSignV1(t, v1, jvzSecret)
	signed2 := jvzooSignV2(t, v2, jvzSecret)
	withoutTime := jvzooSignV1(t, editForm(t, v1, "ctranstime", "\x00"), jvzSecret) + "&ctranstime=1700000000"
	tests := []struct {
		name    string
		secrets []string
		body    string
		ctype   string
		want    error
	}{
		{name: "v1", body: signed1},
		{name: "v1, cverify in lower case", body: signed1[:len(signed1)-8] + strings.ToLower(signed1[len(signed1)-8:])},
		{name: "v1, rotated secrets", secrets: []string{"OldSecret", jvzSecret}, body: signed1},
		{name: "v1, no content type", body: signed1, ctype: "-"},
		{name: "v1, wrong secret", secrets: []string{"NotTheSecret"}, body: signed1, want: ErrSignature},
		{name: "v1, amount changed", body: strings.Replace(signed1, "ctransamount=47.00", "ctransamount=470.00", 1), want: ErrSignature},
		{name: "v1, session reference changed", body: strings.Replace(signed1, "JVZooSession", "EvilSession", 1), want: ErrSignature},
		{name: "v1, field added", body: signed1 + "&cextra=1", want: ErrSignature},
		{name: "v1, ctranstime left out of the sum", body: withoutTime, want: ErrSignature},
		{name: "v1, receipt sent twice", body: "ctransreceipt=FORGED&" + signed1, want: ErrSignature},
		{name: "v1, no cverify", body: v1, want: ErrSignature},
		{name: "v1, cverify too short", body: v1 + "&cverify=0D425C", want: ErrSignature},
		{name: "v2", body: signed2},
		{name: "v2, wrong secret", secrets: []string{"NotTheSecret"}, body: signed2, want: ErrSignature},
		{name: "v2, e-mail changed", body: strings.Replace(signed2, "buyer%40example.com", "other%40example.com", 1), want: ErrSignature},
		{name: "v2, checked as v1", body: jvzooSignV1(t, v2, jvzSecret), want: ErrSignature},
		{name: "JSON content type", body: signed1, ctype: "application/json", want: ErrBadRequest},
		{name: "empty body", body: "", want: ErrBadRequest},
		{name: "not a JVZIPN form", body: "sale_id=1&cverify=00000000", want: ErrBadRequest},
		{name: "bad form encoding", body: "ctransaction=SALE&x=%zz", want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withContentType(jvzReq(tt.body), tt.ctype)
			checkVerify(t, NewJVZoo, Config{Secrets: tt.secrets}, jvzSecret, r, tt.want)
		})
	}
}

// TestJVZooV2UnsignedFields: v2's cverify does not cover transaction_id, so
// a replay with an edited receipt verifies; its event ID, built from signed
// fields only, makes it a duplicate of the genuine notification.
func TestJVZooV2UnsignedFields(t *testing.T) {
	v2 := string(fixture(t, "jvzoo_v2_sale.form"))
	p, err := NewJVZoo(Config{Secrets: []string{jvzSecret}})
	if err != nil {
		t.Fatal(err)
	}
	genuine := jvzReq(jvzooSignV2(t, v2, jvzSecret))
	edited := jvzReq(jvzooSignV2(t, editForm(t, v2, "transaction_id", "FORGED1", "total", "999.00"), jvzSecret))
	for _, r := range []*Request{genuine, edited} {
		if err := p.Verify(r); err != nil {
			t.Fatal(err)
		}
	}
	a, errA := p.Parse(genuine)
	b, errB := p.Parse(edited)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.ID == "" || a.ID != b.ID {
		t.Fatalf("event IDs %q and %q", a.ID, b.ID)
	}
}

func TestJVZooParse(t *testing.T) {
	v1 := string(fixture(t, "jvzoo_v1_sale.form"))
	v2 := string(fixture(t, "jvzoo_v2_sale.form"))
	ref := strings.Repeat("AbC-_9", 10) + "zz"
	tests := []struct {
		name     string
		body     string
		want     error
		kind     Kind
		id       string
		amount   string
		status   order.Status
		event    string
		original string
		reason   string
		problems []string
		check    func(t *testing.T, ev Event)
	}{
		{name: "v1 sale", body: v1, kind: KindOrder, id: "ABCDEFGHJKLMNPQRS", amount: "47.00", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if o.SessionRef != "s1_JVZooSessionReference_sig" || emailOf(o) != order.Hash("buyer@example.com") {
					t.Errorf("session %q email %q", o.SessionRef, emailOf(o))
				}
				if len(o.ClickIDs) != 3 || o.ClickIDs["tid"] != "fbadset12" || o.ClickIDs["fbclid"] != "IwAR2x" || o.ClickIDs["utm_source"] != "fb" {
					t.Errorf("click IDs %v", o.ClickIDs)
				}
				if !o.OccurredAt.Equal(time.Unix(1700000000, 0)) || ev.ID != "ABCDEFGHJKLMNPQRS:SALE:1700000000" || ev.Topic != "SALE" {
					t.Errorf("occurred %v event %q topic %q", o.OccurredAt, ev.ID, ev.Topic)
				}
			}},
		{name: "v1 tid carrying a session reference", body: editForm(t, v1, "caffitid", ref, "cvendthru", "x=1"), kind: KindOrder, id: "ABCDEFGHJKLMNPQRS", amount: "47", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				if ev.Order.SessionRef != ref || ev.Order.ClickIDs["tid"] != "" {
					t.Errorf("session %q click IDs %v", ev.Order.SessionRef, ev.Order.ClickIDs)
				}
			}},
		{name: "v1 upsell", body: editForm(t, v1, "ctransreceipt", "UPSELLRECEIPT0001", "cupsellreceipt", "ABCDEFGHJKLMNPQRS"), kind: KindOrder, id: "UPSELLRECEIPT0001", amount: "47",
			status: order.StatusApproved, event: "purchase", original: "ABCDEFGHJKLMNPQRS"},
		{name: "v1 rebill", body: editForm(t, v1, "ctransaction", "BILL", "ctransreceipt", "ABCDEFGHJKLMNPQRS-B001"), kind: KindOrder, id: "ABCDEFGHJKLMNPQRS-B001", amount: "47",
			status: order.StatusApproved, event: order.EventRebill, original: "ABCDEFGHJKLMNPQRS"},
		{name: "v1 refund", body: editForm(t, v1, "ctransaction", "RFND", "ctransamount", "-47.00"), kind: KindStatus, id: "ABCDEFGHJKLMNPQRS", amount: "47",
			status: order.StatusRefunded, event: "purchase"},
		{name: "v1 chargeback", body: editForm(t, v1, "ctransaction", "CGBK"), kind: KindStatus, id: "ABCDEFGHJKLMNPQRS", amount: "47",
			status: order.StatusRefunded, event: "purchase", reason: "chargeback", problems: []string{"chargeback"}},
		{name: "v1 refund of a rebill", body: editForm(t, v1, "ctransaction", "RFND", "ctransreceipt", "ABCDEFGHJKLMNPQRS-B002"), kind: KindStatus, id: "ABCDEFGHJKLMNPQRS-B002", amount: "47",
			status: order.StatusRefunded, event: order.EventRebill, original: "ABCDEFGHJKLMNPQRS"},
		{name: "v1 insufficient funds", body: editForm(t, v1, "ctransaction", "INSF"), kind: KindStatus, id: "ABCDEFGHJKLMNPQRS", amount: "47",
			status: order.StatusRejected, event: "purchase", reason: "insufficient funds"},
		{name: "v1 cancelled subscription", body: editForm(t, v1, "ctransaction", "CANCEL-REBILL"), kind: KindIgnore, reason: "subscription cancelled: no money moved"},
		{name: "v1 resumed subscription", body: editForm(t, v1, "ctransaction", "UNCANCEL-REBILL"), kind: KindIgnore, reason: "subscription resumed: no money moved"},
		{name: "v1 unknown type", body: editForm(t, v1, "ctransaction", "TEST_SALE"), kind: KindIgnore, reason: `transaction type "TEST_SALE" not used`},
		{name: "v1 amount unreadable", body: editForm(t, v1, "ctransamount", "$47"), kind: KindOrder, id: "ABCDEFGHJKLMNPQRS", status: order.StatusApproved, event: "purchase",
			problems: []string{`ctransamount: bad amount: "$47"`}},
		{name: "v1 no receipt", body: editForm(t, v1, "ctransreceipt", "\x00"), want: ErrMalformed},
		{name: "v1 huge receipt", body: editForm(t, v1, "ctransreceipt", strings.Repeat("R", 100_000)), want: ErrMalformed},
		{name: "v1 empty type", body: editForm(t, v1, "ctransaction", ""), want: ErrMalformed},
		{name: "v2 sale", body: v2, kind: KindOrder, id: "ABC123XYZ", amount: "47.00", status: order.StatusApproved, event: "purchase",
			check: func(t *testing.T, ev Event) {
				o := ev.Order
				if o.SessionRef != "s1_JVZooSessionReference_sig" || emailOf(o) != order.Hash("buyer@example.com") || !o.OccurredAt.IsZero() {
					t.Errorf("session %q email %q occurred %v", o.SessionRef, emailOf(o), o.OccurredAt)
				}
				if o.ClickIDs["tid"] != "fbadset12" || o.ClickIDs["vtid"] != "fe" || ev.ID != "v2:AP-ABC123XYZ:SALE:2024-04-06 14:22:10" {
					t.Errorf("click IDs %v event %q", o.ClickIDs, ev.ID)
				}
			}},
		{name: "v2 rebill", body: editForm(t, v2, "transaction_type", "BILL", "transaction_id", "ABC123XYZ-B002", "paykey", "AP-REBILL2"), kind: KindOrder, id: "ABC123XYZ-B002", amount: "47",
			status: order.StatusApproved, event: order.EventRebill, original: "ABC123XYZ"},
		{name: "v2 refund", body: editForm(t, v2, "transaction_type", "RFND"), kind: KindStatus, id: "ABC123XYZ", amount: "47", status: order.StatusRefunded, event: "purchase",
			reason: "refund or chargeback (JVZIPN v2 does not tell them apart)"},
		{name: "v2 status not completed", body: editForm(t, v2, "status", "Pending"), kind: KindOrder, id: "ABC123XYZ", amount: "47", status: order.StatusApproved, event: "purchase",
			problems: []string{`status "Pending"`}},
		{name: "v2 no transaction id", body: editForm(t, v2, "transaction_id", "\x00"), want: ErrMalformed},
		{name: "neither version", body: "x=1", want: ErrMalformed},
		{name: "field sent twice", body: v1 + "&ctransreceipt=X", want: ErrMalformed},
	}
	p, err := NewJVZoo(Config{Secrets: []string{jvzSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseCase(t, p, jvzReq(tt.body), tt.want, tt.kind)
			if !ok {
				return
			}
			if ev.Reason != tt.reason {
				t.Errorf("reason %q, want %q", ev.Reason, tt.reason)
			}
			if tt.kind == KindIgnore {
				return
			}
			checkOrder(t, ev.Order, tt.id, tt.amount, "USD", tt.status)
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

// TestJVZooRetries: JVZoo resends the same notification hourly until it
// gets a 200; each copy is the same event, and the refund is another.
func TestJVZooRetries(t *testing.T) {
	v1 := string(fixture(t, "jvzoo_v1_sale.form"))
	p, err := NewJVZoo(Config{Secrets: []string{jvzSecret}})
	if err != nil {
		t.Fatal(err)
	}
	body := jvzooSignV1(t, v1, jvzSecret)
	first, err := p.Parse(jvzReq(body))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Parse(jvzReq(body))
	if err != nil {
		t.Fatal(err)
	}
	refund, err := p.Parse(jvzReq(jvzooSignV1(t, editForm(t, v1, "ctransaction", "RFND", "ctranstime", "1700090000"), jvzSecret)))
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || again.ID != first.ID || refund.ID == first.ID || refund.Order.ID != first.Order.ID {
		t.Fatalf("sale %q, retry %q, refund %q (order %q)", first.ID, again.ID, refund.ID, refund.Order.ID)
	}
}
