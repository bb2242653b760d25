package webhook

import (
	"net/url"
	"strconv"
	"testing"
)

// BenchmarkVerifyParse measures one authentic delivery per provider: the
// signature check over the fixture body plus parsing it into an Event.
func BenchmarkVerifyParse(b *testing.B) {
	stripeBody := fixture(b, "stripe_session_completed.json")
	shopifyBody := fixture(b, "shopify_order.json")
	wooBody := fixture(b, "woocommerce_order.json")
	paddleBody := fixture(b, "paddle_transaction_completed.json")
	lemonBody := fixture(b, "lemonsqueezy_order_created.json")
	gumroadBody := fixture(b, "gumroad_sale.form")
	genericBody := []byte(genericBody)

	sh, _ := NewShopify(Config{Secrets: []string{shopifySecret}})
	wc, _ := NewWooCommerce(Config{Secrets: []string{wooSecret}})
	pd, _ := NewPaddle(Config{Secrets: []string{paddleVectorSecret}})
	ls, _ := NewLemonSqueezy(Config{Secrets: []string{lemonSecret}})
	gr, _ := NewGumroad(Config{Secrets: []string{gumroadToken}})
	cbBody := cbSeal(b, cbSecret, fixture(b, "clickbank_sale.json"))
	jvzBody := jvzooSignV1(b, string(fixture(b, "jvzoo_v1_sale.form")), jvzSecret)
	wpBody := string(fixture(b, "warriorplus_sale.form"))
	jv, _ := NewJVZoo(Config{Secrets: []string{jvzSecret}})
	wp, _ := NewWarriorPlus(Config{Secrets: []string{wpKey}})
	gn, err := NewGeneric(genericCfg())
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		p Provider
		r *Request
	}{
		{newStripe(b), &Request{Header: hdr("Content-Type", "application/json; charset=utf-8", "Stripe-Signature", stripeSigned(stripeBody, stripeSecret, testNow)), Body: stripeBody, Now: testNow}},
		{sh, shopifyReq(shopifyBody, "orders/paid")},
		{wc, wooReq(wooBody, "order.created")},
		{pd, paddleReq(paddleBody, paddleSig(paddleVectorSecret, testNow.Unix(), paddleBody), testNow)},
		{ls, lemonReq(lemonBody, "order_created")},
		{gr, gumroadReq(gumroadBody, "/.well-known/postback/gumroad/"+gumroadToken)},
		{newClickBank(b), cbReq(cbBody)},
		{jv, jvzReq(jvzBody)},
		{wp, wpReq(wpBody)},
		{gn, &Request{Header: hdr("Content-Type", "application/json", "X-Hub-Signature-256", "sha256="+hexs(hmacSHA256("generic_secret", genericBody))), Body: genericBody, Query: url.Values{}, Now: testNow}},
	}
	for _, c := range cases {
		b.Run(c.p.Name(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.r.Body)))
			for b.Loop() {
				if err := c.p.Verify(c.r); err != nil {
					b.Fatal(err)
				}
				ev, err := c.p.Parse(c.r)
				if err != nil || ev.Kind != KindOrder {
					b.Fatal(err, ev.Kind, strconv.Quote(ev.Reason))
				}
			}
		})
	}
}
