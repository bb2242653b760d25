package postback

import (
	"context"
	"testing"
)

func BenchmarkRenderGET(b *testing.B) {
	d := mustNew(b, Config{URL: "https://trk.example.com/?nid=123&transaction_id={click_id}&amount={amount}&adv1={order_id}&sub1={sub1}"})
	c := fixture("everflow", "transaction_id", efClick)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Render(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPresetEverflow(b *testing.B) {
	d := mustNew(b, Config{Preset: "everflow", Params: map[string]string{"domain": "trk.example.com", "nid": "123"}})
	c := fixture("everflow", "transaction_id", efClick)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Render(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderMetaCAPI(b *testing.B) {
	d := mustNew(b, Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1234567890", "access_token": "EAAB"}})
	c := fixture("meta", "fbclid", fixFbclid)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Render(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}
