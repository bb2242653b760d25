package detect

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// bigPage builds a ~300 KB thank-you page: the WooCommerce page from
// testdata with a related-products grid, a mega menu and the inline scripts
// a typical theme and plugins add (settings blobs, a minified helper, a
// consent banner whose config mentions "purchase") before the footer, so
// the purchase push comes near the end.
func bigPage(tb testing.TB) []byte {
	base := string(readTestdata(tb, "woocommerce-thankyou.html"))
	cut := strings.Index(base, `<footer id="colophon"`)
	var b strings.Builder
	b.WriteString(base[:cut])
	b.WriteString(`<section class="related products"><h2>You may also like&hellip;</h2><ul class="products columns-4">`)
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, `<li class="product type-product post-%d status-publish instock product_cat-coffee has-post-thumbnail taxable shipping-taxable purchasable product-type-simple">
<a href="https://shop.example/product/roast-%d/" class="woocommerce-LoopProduct-link woocommerce-loop-product__link"><img width="324" height="324" src="https://shop.example/wp-content/uploads/2024/0%d/roast-%d-324x324.jpg" class="attachment-woocommerce_thumbnail size-woocommerce_thumbnail" alt="Roast %d" loading="lazy" />
<h2 class="woocommerce-loop-product__title">Single origin roast #%d &ndash; 250g</h2><span class="price"><span class="woocommerce-Price-amount amount"><bdi><span class="woocommerce-Price-currencySymbol">&#36;</span>%d.50</bdi></span></span></a>
<a href="?add-to-cart=%d" data-quantity="1" class="button product_type_simple add_to_cart_button ajax_add_to_cart" data-product_id="%d" data-product_sku="SO-%d" aria-label="Add to cart" rel="nofollow">Add to cart</a></li>
`, 1000+i, i, 1+i%9, i, i, i, 10+i%30, 1000+i, 1000+i, i)
	}
	b.WriteString(`</ul></section>`)
	b.WriteString(`<script id="theme-settings-js-extra">var themeSettings = {`)
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, `"opt_%d":{"enabled":%v,"label":"Option %d","breakpoints":[320,768,1024],"selector":".block-%d > .inner"},`, i, i%2 == 0, i, i)
	}
	b.WriteString(`"v":"4.5.3"};</script>
<script id="helper-inline">!function(e,t){"use strict";var n=function(e){return document.querySelectorAll(e)};`)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, `e.fn%d=function(a,b){var c=n(".x%d");for(var d=0;d<c.length;d++){c[d].classList.toggle("on",a>b)}return c.length};`, i, i)
	}
	b.WriteString(`}(window);</script>
<script id="consent-config">window.cookieConsentConfig = {categories: {analytics: {purposes: ['measurement', 'purchase_history']}, marketing: {}}, revision: 3};</script>
`)
	b.WriteString(base[cut:])
	return []byte(b.String())
}

func BenchmarkGA4Page300KB(b *testing.B) {
	body := bigPage(b)
	if i := bytes.LastIndex(body, []byte("event: 'purchase'")); i < len(body)*9/10 {
		b.Fatalf("purchase at %d of %d, not near the end", i, len(body))
	}
	f, err := GA4{}.Extract(&Page{Body: body})
	if err != nil || f.OrderID != "727" {
		b.Fatalf("%+v %v", f, err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// A fresh Page each time: the script scan is part of the cost.
		if _, err := (GA4{}).Extract(&Page{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllSourcesPage300KB(b *testing.B) {
	body := bigPage(b)
	re, err := NewRegex(`Order number:\s*<strong>(?P<order_id>[^<]+)</strong>`)
	if err != nil {
		b.Fatal(err)
	}
	sources := []Source{JSONLD{}, Magento{}, re, GA4{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		f, _ := Extract(&Page{Body: body}, sources)
		if f.OrderID != "727" {
			b.Fatal(f)
		}
	}
}

func BenchmarkGA4PageWithoutPurchase(b *testing.B) {
	body := bytes.ReplaceAll(bigPage(b), []byte("purchase"), []byte("purchaze"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		GA4{}.Extract(&Page{Body: body})
	}
}

func BenchmarkDecode(b *testing.B) {
	body := bigPage(b)
	for _, enc := range []string{"gzip", "br", "zstd", "deflate"} {
		z := compress(b, enc, body)
		b.Run(enc, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(z, enc, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	bomb := compressZeros(b, "gzip", 100<<20)
	b.Run("gzip-bomb-1MB-cap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Decode(bomb, "gzip", 1<<20)
		}
	})
}

func BenchmarkCapture(b *testing.B) {
	body := bigPage(b)
	for _, limit := range []int{1 << 20, 64 << 10} {
		b.Run(fmt.Sprintf("300KB-in-32KB-writes-cap-%dKB", limit>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				c := NewCapture(limit, nil)
				for rest := body; len(rest) > 0; {
					k := min(32<<10, len(rest))
					c.Write(rest[:k])
					rest = rest[k:]
				}
				c.Release()
			}
		})
	}
}
