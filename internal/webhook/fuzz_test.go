package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	stripewebhook "github.com/stripe/stripe-go/v85/webhook"
)

// fuzzParse runs Verify and Parse on arbitrary input: neither may panic, and
// Parse must satisfy checkInvariants.
func fuzzParse(t *testing.T, p Provider, r *Request) {
	_ = p.Verify(r)
	ev, err := p.Parse(r)
	checkInvariants(t, p, ev, err)
}

func FuzzStripeParse(f *testing.F) {
	f.Add(fixture(f, "stripe_session_completed.json"))
	f.Add(fixture(f, "stripe_charge_refunded.json"))
	f.Add(fixture(f, "stripe_session_subscription.json"))
	f.Add(fixture(f, "stripe_invoice_paid_cycle.json"))
	f.Add(fixture(f, "stripe_subscription_deleted.json"))
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1","payment_intent":{"id":7},"amount_total":"x","metadata":[1]}}}`))
	f.Add([]byte(`{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":-99999999999999999999}}}`))
	p := newStripe(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("Stripe-Signature", "t=1,v1=00"), Body: body, Now: testNow})
	})
}

func FuzzShopifyParse(f *testing.F) {
	f.Add("orders/paid", fixture(f, "shopify_order.json"))
	f.Add("orders/create", fixture(f, "shopify_order.json"))
	f.Add("refunds/create", fixture(f, "shopify_refund.json"))
	f.Add("refunds/create", []byte(`{"order_id":"1","transactions":[{"kind":"refund","amount":"9223372036854775807"},{"kind":"refund","amount":"1"}]}`))
	f.Add("orders/paid", []byte(`{"id":1,"landing_site":"?a=%zz&b=1&=2","note_attributes":{"name":"pb_session"}}`))
	p, _ := NewShopify(Config{Secrets: []string{shopifySecret}})
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("X-Shopify-Topic", topic, "X-Shopify-Hmac-Sha256", topic), Body: body})
	})
}

func FuzzWooCommerceParse(f *testing.F) {
	f.Add("order.created", "", fixture(f, "woocommerce_order.json"))
	f.Add("order.updated", "", []byte(`{"id":"x","status":"refunded","total":12,"meta_data":[{"key":"pb_session","value":{"a":1}}]}`))
	f.Add("", "application/x-www-form-urlencoded", []byte("webhook_id=12"))
	f.Add("", "", []byte("webhook_id=99999999999999999999999"))
	p, _ := NewWooCommerce(Config{Secrets: []string{wooSecret}})
	f.Fuzz(func(t *testing.T, topic, ctype string, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("X-WC-Webhook-Topic", topic, "Content-Type", ctype), Body: body})
	})
}

func FuzzPaddleParse(f *testing.F) {
	f.Add([]byte(paddleVectorPayload))
	f.Add(fixture(f, "paddle_transaction_completed.json"))
	f.Add(fixture(f, "paddle_adjustment_refund.json"))
	f.Add(fixture(f, "paddle_transaction_recurring.json"))
	f.Add(fixture(f, "paddle_subscription_canceled.json"))
	f.Add([]byte(`{"event_type":"transaction.completed","data":{"id":"txn_1","details":{"totals":{"grand_total":"1e9","currency_code":"XX"}},"custom_data":"s"}}`))
	p, _ := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("Paddle-Signature", paddleVectorSignature), Body: body, Now: testNow})
	})
}

func FuzzLemonSqueezyParse(f *testing.F) {
	f.Add("order_created", fixture(f, "lemonsqueezy_order_created.json"))
	f.Add("order_refunded", fixture(f, "lemonsqueezy_order_refunded.json"))
	f.Add("order_created", fixture(f, "lemonsqueezy_order_subscription.json"))
	f.Add("subscription_payment_success", fixture(f, "lemonsqueezy_subscription_payment_success.json"))
	f.Add("subscription_cancelled", fixture(f, "lemonsqueezy_subscription_cancelled.json"))
	f.Add("", []byte(`{"meta":{"event_name":"order_created"},"data":{"id":5,"attributes":{"status":"paid","total":"12.5","currency":7}}}`))
	p, _ := NewLemonSqueezy(Config{Secrets: []string{lemonSecret}})
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("X-Event-Name", event, "X-Signature", lemonVectorSig), Body: body})
	})
}

func FuzzGumroadParse(f *testing.F) {
	f.Add("/hook/"+gumroadToken, fixture(f, "gumroad_sale.form"))
	f.Add("/", []byte(`sale_id=1&url_params={'a' : 'b', "c"=>"d", 'e'`))
	f.Add("", []byte(`sale_id=1&price=99999999999999999999&currency=xx&refunded=true`))
	f.Add("x", []byte(`sale_id=1&url_params[=1&url_params[]]=2&url_params={"pb_session":{"x":1}}`))
	p, _ := NewGumroad(Config{Secrets: []string{gumroadToken}})
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Body: body, Path: path})
	})
}

func FuzzGumroadURLParams(f *testing.F) {
	f.Add(`{'source_url' : 'https%3A%2F%2Fgumroad.com%2Fwidgets', 'campaignid' : 'c123'}`)
	f.Add(`{"a"=>"b", "n"=>5, "x"=>nil}`)
	f.Add(`{"a":"b"}`)
	f.Add(`'k' : `)
	f.Add(`"'"'":'`)
	f.Fuzz(func(t *testing.T, s string) {
		out := map[string]string{}
		parseLooseHash(s, out)
		if len(out) > maxClickIDs {
			t.Fatalf("%d entries", len(out))
		}
		for k, v := range out {
			if k == "" || v == "" {
				t.Fatalf("empty key or value: %q=%q", k, v)
			}
		}
	})
}

func FuzzGenericParse(f *testing.F) {
	f.Add([]byte(genericBody))
	f.Add([]byte(`{"order":{"number":{"a":1},"total":[1],"state":null}}`))
	f.Add([]byte(`{"order":{"number":"1","total":"1.2.3,4","currency":"€€€","state":"paid"}}`))
	p, err := NewGeneric(genericCfg())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzParse(t, p, &Request{Header: hdr("X-Hub-Signature-256", "sha256=00"), Body: body})
	})
}

// FuzzStripeSignatureHeader: our header parser never panics, and whatever
// stripe-go's verifier accepts, ours accepts too.
func FuzzStripeSignatureHeader(f *testing.F) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	good := hexs(stripewebhook.ComputeSignature(testNow, body, stripeSecret))
	ts := strconv.FormatInt(testNow.Unix(), 10)
	for _, h := range []string{
		"t=" + ts + ",v1=" + good,
		"t=" + ts + ",v1=" + strings.ToUpper(good),
		"t=" + ts + ",v0=" + good + ",v1=00,v1=" + good,
		"v1=" + good + ",t=" + ts,
		"t=" + ts + ", v1=" + good,
		"t=" + ts + ",v1=" + good + ",x",
		"t=0,v1=" + good,
		"", ",", "=", "t=", "t==1", "v1=zz",
	} {
		f.Add(h)
	}
	p := newStripe(f)
	f.Fuzz(func(t *testing.T, h string) {
		parsedTS, sigs, err := parseStripeSignature(h)
		if err == nil && (parsedTS <= 0 || len(sigs) == 0) {
			t.Fatalf("accepted header without timestamp or v1: %q", h)
		}
		if stripewebhook.ValidatePayloadIgnoringTolerance(body, h, stripeSecret) != nil {
			return
		}
		if err != nil {
			if hasNonPositiveT(h) {
				return // we refuse t<=0 deliberately; stripe-go does not
			}
			t.Fatalf("stripe-go accepts %q, our parser says %v", h, err)
		}
		r := &Request{Header: hdr("Stripe-Signature", h), Body: body, Now: time.Unix(parsedTS, 0)}
		if err := p.Verify(r); err != nil {
			t.Fatalf("stripe-go accepts %q, we say %v", h, err)
		}
	})
}

func hasNonPositiveT(h string) bool {
	for pair := range strings.SplitSeq(h, ",") {
		if v, ok := strings.CutPrefix(pair, "t="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n <= 0 {
				return true
			}
		}
	}
	return false
}

// FuzzPaddleSignatureHeader: our parser never panics, and whatever the
// official SDK verifier accepts, ours accepts too (at the signed time).
func FuzzPaddleSignatureHeader(f *testing.F) {
	for _, h := range []string{
		paddleVectorSignature,
		" " + paddleVectorSignature + " ",
		paddleVectorSignature + ";h1=00",
		"h1=6c05ef8fa83c44d751be6d259ec955ce5638e2c54095bf128e408e2fce1589c8;ts=1710929255",
		"ts=01710929255;h1=6c05ef8fa83c44d751be6d259ec955ce5638e2c54095bf128e408e2fce1589c8",
		"ts=0;h1=00", "", ";", "=", "ts=;h1=", "ts=99999999999999999999;h1=aa",
	} {
		f.Add(h)
	}
	p, _ := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	sdk := paddle.NewWebhookVerifier(paddleVectorSecret)
	f.Fuzz(func(t *testing.T, h string) {
		tsText, ts, h1, err := parsePaddleSignature(strings.TrimSpace(h))
		if err == nil && (tsText == "" || ts <= 0 || len(h1) == 0) {
			t.Fatalf("accepted header without ts or h1: %q", h)
		}
		hr, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(paddleVectorPayload))
		hr.Header.Set("Paddle-Signature", h)
		if ok, sdkErr := sdk.Verify(hr); !ok || sdkErr != nil {
			return
		}
		if err != nil {
			return // only "ts=0" or an out-of-range ts can get here: refused by design
		}
		r := &Request{Header: hdr("Paddle-Signature", h), Body: []byte(paddleVectorPayload), Now: time.Unix(ts, 0)}
		if err := p.Verify(r); err != nil {
			t.Fatalf("SDK accepts %q, we say %v", h, err)
		}
	})
}

// FuzzClickBankParse encrypts arbitrary plaintext with the test key, so
// that what is fuzzed is the parser behind the decryption.
func FuzzClickBankParse(f *testing.F) {
	sale := fixture(f, "clickbank_sale.json")
	f.Add(sale)
	f.Add(bytes.Replace(sale, []byte(`"SALE"`), []byte(`"BILL"`), 1))
	f.Add(bytes.Replace(sale, []byte(`"SALE"`), []byte(`"CGBK"`), 1))
	f.Add([]byte(`{"receipt":"********","transactionType":"SALE"}`))
	f.Add([]byte(`{"receipt":"R-B","transactionType":"RFND","totalOrderAmount":-99999999999999999999,"currency":7}`))
	f.Add([]byte(`{"receipt":"R","transactionType":"SALE","vendorVariables":[1],"trackingCodes":{"a":"b"},"upsell":"x"}`))
	f.Add([]byte(`{"receipt":"R","transactionType":"SALE","trackingCodes":["pbaaaa",null,7],"vendorVariables":{"pb_session":{"x":1}}}`))
	f.Add([]byte(`{"receipt":"R","receipt":"S"}`))
	f.Add([]byte(`[]`))
	p := newClickBank(f)
	f.Fuzz(func(t *testing.T, plain []byte) {
		fuzzParse(t, p, cbReq(cbSeal(t, cbSecret, plain)))
	})
}

// FuzzClickBankEnvelope feeds raw bodies. Verify and Parse never panic and
// agree: Parse fails with ErrSignature or ErrBadRequest exactly when Verify
// does.
func FuzzClickBankEnvelope(f *testing.F) {
	f.Add(fixture(f, "clickbank_test_button.json"))
	f.Add(cbSeal(f, cbSecret, fixture(f, "clickbank_sale.json")))
	f.Add([]byte(`{"notification":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"notification":"","iv":""}`))
	f.Add([]byte(`notification=AAAA&iv=BBBB`))
	f.Add([]byte(`ctransaction=SALE&cverify=00000000`))
	f.Add([]byte(`{"notification":7,"iv":null}`))
	p := newClickBank(f, cbSecret, cbVectorSecret)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := cbReq(body)
		verr := p.Verify(r)
		ev, perr := p.Parse(r)
		checkInvariants(t, p, ev, perr)
		refused := perr != nil && !errors.Is(perr, ErrMalformed)
		if (verr != nil) != refused {
			t.Fatalf("Verify says %v, Parse says %v", verr, perr)
		}
	})
}

func FuzzJVZooParse(f *testing.F) {
	v1 := string(fixture(f, "jvzoo_v1_sale.form"))
	v2 := string(fixture(f, "jvzoo_v2_sale.form"))
	f.Add(jvzooSignV1(f, v1, jvzSecret))
	f.Add(jvzooSignV2(f, v2, jvzSecret))
	f.Add(strings.Replace(v1, "ctransaction=SALE", "ctransaction=BILL", 1))
	f.Add("ctransaction=RFND&ctransreceipt=-B&ctransamount=-9223372036854775808&cvendthru=%25zz%26pb_session%3D")
	f.Add("transaction_type=REBILL&transaction_id=X-B99999999999999999999&total=1e9&other_params=a=b&tid=" + strings.Repeat("A", 62))
	f.Add("paykey=&cverify=zzzzzzzz")
	p, _ := NewJVZoo(Config{Secrets: []string{jvzSecret}})
	f.Fuzz(func(t *testing.T, body string) {
		fuzzParse(t, p, jvzReq(body))
	})
}

func FuzzWarriorPlusParse(f *testing.F) {
	sale := string(fixture(f, "warriorplus_sale.form"))
	f.Add(sale)
	f.Add(strings.Replace(sale, "WP_ACTION=sale", "WP_ACTION=subscr_completed", 1) + "&WP_SUBSCR_PAYMENT_NUM=2&WP_SUBSCR_ID=s1")
	f.Add("WP_ACTION=subscr_completed&WP_SALEID=1&WP_SUBSCR_PAYMENT_NUM=-1")
	f.Add("WP_ACTION=dispute&WP_SALE=sale_1&WP_SALE_AMOUNT=-0&WP_CHECKOUT_CUSTOM=%3Fpb_session%3D%26%3D")
	f.Add("WP_ACTION=&WP_SECURITYKEY=" + wpKey)
	p, _ := NewWarriorPlus(Config{Secrets: []string{wpKey}})
	f.Fuzz(func(t *testing.T, body string) {
		fuzzParse(t, p, wpReq(body))
	})
}

// FuzzTID: decoding never panics, accepts only what EncodeTID writes (in
// either case), and encoding a session reference always gives a tid that
// ClickBank keeps and that decodes back.
func FuzzTID(f *testing.F) {
	f.Add(EncodeTID(strings.Repeat("AbC-_9", 10) + "zz"))
	f.Add(EncodeTID(strings.Repeat("Zy0_", 11)))
	f.Add("pb")
	f.Add("fb_adset_12")
	f.Add(strings.Repeat("AbC-_9", 10) + "zz")
	f.Fuzz(func(t *testing.T, s string) {
		if ref, ok := decodeTID(s); ok {
			if !looksLikeSessionRef(ref) || EncodeTID(ref) != strings.ToLower(s) {
				t.Fatalf("decodeTID(%q) = %q, which encodes to %q", s, ref, EncodeTID(ref))
			}
		}
		if looksLikeSessionRef(s) {
			tid := EncodeTID(s)
			if !clickBankTID.MatchString(tid) {
				t.Fatalf("EncodeTID(%q) = %q", s, tid)
			}
			if ref, ok := decodeTID(tid); !ok || ref != s {
				t.Fatalf("round trip of %q gave %q, %v", s, ref, ok)
			}
		}
	})
}
