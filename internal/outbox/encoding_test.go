package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/codec"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

// fullDelivery has every field set.
func fullDelivery() *Delivery {
	at := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	return &Delivery{
		ID: "01a200181012cfb0c2b695853ca08277", ConversionID: "01a200181012cfb0c2b695853ca08278",
		Network: "meta", Event: "purchase", OrderID: "cs_1", Status: order.StatusRefunded,
		Key: "meta/purchase:refunded/cs_1",
		Request: postback.Request{Method: "POST", URL: "https://graph.example/v21.0/1/events",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"data":[]}`)},
		State: StateRetrying, CreatedAt: at, QueuedAt: at.Add(time.Second), NextAttempt: at.Add(time.Minute),
		MaxAge: 72 * time.Hour, Tries: 2, Reason: "replayed", Test: true,
		Attempts: []Attempt{{At: at, Status: 503, LatencyMS: 12.5, Outcome: "retry", Error: "busy", Snippet: "try later"}},
	}
}

// headerDelivery has several header keys, some with several values, and
// several attempts.
func headerDelivery() *Delivery {
	at := time.Date(2026, 2, 13, 16, 26, 40, 0, time.UTC)
	return &Delivery{
		ID: "h1", ConversionID: "c1", Network: "webhook", Event: "lead", OrderID: "o-\u00e9\x00", Key: "webhook/lead/o",
		Request: postback.Request{Method: "POST", URL: "https://hooks.example/in",
			Header: http.Header{
				"Authorization": {"Bearer abc"},
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"X-Tag":         {"a", "", "c"},
				"X-Empty":       {""},
			},
			Body: []byte("a=1&b=\x00\xff")},
		State: StateDead, CreatedAt: at, QueuedAt: at, MaxAge: -time.Second, Tries: 25, Reason: "max age",
		Attempts: []Attempt{
			{At: at, Outcome: "error", Error: "dial tcp: connection refused"},
			{At: at.Add(time.Minute), Status: 400, LatencyMS: 0.25, Outcome: "dead", Snippet: "bad request"},
			{At: time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC), Status: 200, LatencyMS: math.Inf(1), Outcome: "ok"},
		},
	}
}

func TestDeliveryEncodingRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    *Delivery
	}{
		{"full", fullDelivery()},
		{"minimal", &Delivery{ID: "m"}},
		{"header", headerDelivery()},
		{"GET", benchDelivery()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := encodeDelivery(tt.d)
			if v[0] != deliveryFormat {
				t.Fatalf("format byte %q", v[0])
			}
			back, err := decodeDelivery(tt.d.ID, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.d) {
				t.Fatalf("round trip:\n%+v\n%+v", back, tt.d)
			}
			// Header keys come out of a map: the record must not depend
			// on their order.
			for range 20 {
				if again := encodeDelivery(tt.d); !bytes.Equal(again, v) {
					t.Fatalf("encoding is not deterministic:\n%q\n%q", v, again)
				}
			}
		})
	}
}

// TestDeliveryEncodingSize keeps the binary form well under the API JSON
// and the JSON form stored before it.
func TestDeliveryEncodingSize(t *testing.T) {
	d := fullDelivery()
	v := encodeDelivery(d)
	api, _ := json.Marshal(d)
	old, _ := json.Marshal(oldRecord(d))
	t.Logf("binary %d bytes, stored JSON %d, API JSON %d", len(v), len(old), len(api))
	if len(v)*5 > len(api)*2 {
		t.Errorf("binary form is %d bytes, the API JSON %d: more than 40%%", len(v), len(api))
	}
	if len(v)*5 > len(old)*3 {
		t.Errorf("binary form is %d bytes, the old stored JSON %d: more than 60%%", len(v), len(old))
	}
}

// oldRecord is d in the JSON form written before the binary form, as the
// previous encoder built it.
func oldRecord(d *Delivery) *deliveryRecord {
	rec := &deliveryRecord{
		Conversion: d.ConversionID, Network: d.Network, Event: d.Event, OrderID: d.OrderID, Status: d.Status,
		Key: d.Key, Method: d.Request.Method, URL: d.Request.URL, Header: d.Request.Header, Body: d.Request.Body,
		State: d.State, Created: unixNano(d.CreatedAt), Queued: unixNano(d.QueuedAt), Next: unixNano(d.NextAttempt),
		MaxAge: d.MaxAge, Tries: d.Tries, Reason: d.Reason, Test: d.Test,
	}
	for _, a := range d.Attempts {
		rec.Attempts = append(rec.Attempts, attemptRec{At: unixNano(a.At), Status: a.Status, Latency: a.LatencyMS, Outcome: a.Outcome, Error: a.Error, Snippet: a.Snippet})
	}
	return rec
}

// oldJSON holds records as the previous encoder wrote them.
var oldJSON = []struct {
	name string
	id   string
	json string
	want func() *Delivery
}{
	{
		name: "GET", id: "d1",
		json: `{"c":"conv","n":"meta","e":"purchase","o":"1001","k":"meta/purchase/1001","m":"GET","u":"http://127.0.0.1/pb?x=1","s":"queued","ca":1771000000000000000,"qa":1771000000000000000,"na":1771000000000000000,"ma":259200000000000,"a":[{"t":1771000000000000000,"s":500,"l":12.5,"o":"retry","p":"busy"}]}`,
		want: func() *Delivery {
			at := time.Unix(1771000000, 0).UTC()
			return &Delivery{
				ID: "d1", ConversionID: "conv", Network: "meta", Event: "purchase", OrderID: "1001", Key: "meta/purchase/1001",
				Request: postback.Request{Method: "GET", URL: "http://127.0.0.1/pb?x=1"},
				State:   StateQueued, CreatedAt: at, QueuedAt: at, NextAttempt: at, MaxAge: 72 * time.Hour,
				Attempts: []Attempt{{At: at, Status: 500, LatencyMS: 12.5, Outcome: "retry", Snippet: "busy"}},
			}
		},
	},
	{
		name: "full", id: "01a200181012cfb0c2b695853ca08277",
		json: `{"c":"01a200181012cfb0c2b695853ca08278","n":"meta","e":"purchase","o":"cs_1","os":"refunded","k":"meta/purchase:refunded/cs_1","m":"POST","u":"https://graph.example/v21.0/1/events","h":{"Content-Type":["application/json"]},"b":"eyJkYXRhIjpbXX0=","s":"retrying","ca":1795262400123456789,"qa":1795262401123456789,"na":1795262460123456789,"ma":259200000000000,"t":2,"a":[{"t":1795262400123456789,"s":503,"l":12.5,"o":"retry","e":"busy","p":"try later"}],"r":"replayed","x":true}`,
		want: fullDelivery,
	},
	{
		// Empty lists, which the previous encoder omitted, read as nil.
		name: "empty lists", id: "e",
		json: `{"n":"","m":"","u":"","h":{},"b":"","s":"","ca":0,"qa":0,"a":[]}`,
		want: func() *Delivery { return &Delivery{ID: "e"} },
	},
}

func TestDecodeDeliveryJSON(t *testing.T) {
	for _, tt := range oldJSON {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeDelivery(tt.id, []byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(d, want) {
				t.Fatalf("decoded:\n%+v\nwant:\n%+v", d, want)
			}
			// Written again, it takes the binary form and reads the same.
			v := encodeDelivery(d)
			back, err := decodeDelivery(tt.id, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, d) {
				t.Fatalf("binary round trip:\n%+v\n%+v", back, d)
			}
		})
	}
	// The previous encoder's output for the full example is the literal
	// above, so the test reads what was really stored.
	if v, _ := json.Marshal(oldRecord(fullDelivery())); string(v) != oldJSON[1].json {
		t.Errorf("the previous encoder writes\n%s", v)
	}
	if _, err := decodeDelivery("x", []byte(`{"c":`)); err == nil {
		t.Error("truncated JSON decoded")
	}
}

func TestDecodeDeliveryCorrupt(t *testing.T) {
	good := encodeDelivery(headerDelivery())
	// withCount is a record whose fields up to a list are empty, then a
	// count of n, then a few bytes.
	withCount := func(list string, n uint64) []byte {
		w := codec.NewWriter(deliveryFormat, 0)
		for range 8 { // ConversionID to URL
			w.String("")
		}
		if list == "header values" {
			w.Uint(1)
			w.String("K")
		}
		if list == "attempts" {
			w.Uint(0)     // header
			w.Bytes(nil)  // body
			w.String("")  // state
			for range 4 { // times and max age
				w.Int(0)
			}
			w.Uint(0) // tries
		}
		w.Uint(n)
		w.String("abc")
		w.Bool(false)
		return w.Data()
	}
	type corrupt struct {
		name string
		data []byte
		msg  string // in the error, if set
	}
	tests := []corrupt{
		{"empty", nil, ""},
		{"format byte only", []byte{deliveryFormat}, ""},
		{"wrong format byte", append([]byte{'S'}, good[1:]...), "format"},
		{"trailing byte", append(append([]byte(nil), good...), 0), "after the last field"},
		{"bad bool", append(append([]byte(nil), good[:len(good)-1]...), 2), "bool"},
		{"absurd header count", withCount("header keys", math.MaxUint64), "count"},
		{"absurd value count", withCount("header values", 1<<40), "count"},
		{"absurd attempt count", withCount("attempts", 1<<31), "count"},
		{"attempt count beyond the record", withCount("attempts", 2), "count"},
	}
	for i := range len(good) {
		tests = append(tests, corrupt{fmt.Sprintf("truncated to %d bytes", i), good[:i], ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeDelivery("id", tt.data)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("got %+v, %v; want an error wrapping codec.ErrCorrupt", d, err)
			}
			if !strings.HasPrefix(err.Error(), "decoding delivery id: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want one about %q", err, tt.msg)
			}
			if d != nil {
				t.Errorf("got a delivery with the error: %+v", d)
			}
		})
	}
}

// FuzzDecodeDelivery checks that no record makes decodeDelivery panic, that
// a binary record it rejects is reported as corrupt, and that whatever it
// accepts is written and read back as the same delivery.
func FuzzDecodeDelivery(f *testing.F) {
	for _, d := range []*Delivery{fullDelivery(), headerDelivery(), benchDelivery(), {}} {
		v := encodeDelivery(d)
		f.Add(v)
	}
	for _, tt := range oldJSON {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		d, err := decodeDelivery("id", v)
		if err != nil {
			if (len(v) == 0 || v[0] != '{') && !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("binary record rejected without codec.ErrCorrupt: %v", err)
			}
			return
		}
		v2 := encodeDelivery(d)
		d2, err := decodeDelivery("id", v2)
		if err != nil {
			t.Fatalf("re-encoded record rejected: %v\n%q", err, v2)
		}
		// A NaN latency is never equal to itself, so compare the records
		// too: they keep the float's bits.
		if v3 := encodeDelivery(d2); !bytes.Equal(v3, v2) {
			t.Fatalf("re-encoded record changed:\n%q\n%q", v2, v3)
		}
		if !hasNaN(d) && !reflect.DeepEqual(d2, d) {
			t.Fatalf("round trip:\n%+v\n%+v", d2, d)
		}
	})
}

func hasNaN(d *Delivery) bool {
	for _, a := range d.Attempts {
		if math.IsNaN(a.LatencyMS) {
			return true
		}
	}
	return false
}

// benchDelivery is a typical stored delivery: a tracker postback sent as a
// GET, no header or body, answered once with a retryable error.
func benchDelivery() *Delivery {
	at := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	return &Delivery{
		ID: "0193a1b2c3d4e5f60718293a4b5c6d7e", ConversionID: "0193a1b2c3d4e5f60718293a4b5c6d7f",
		Network: "binom", Event: "purchase", OrderID: "cs_live_a1B2c3D4e5F6g7H8", Status: order.StatusApproved,
		Key: "binom/purchase/cs_live_a1B2c3D4e5F6g7H8",
		Request: postback.Request{Method: "GET",
			URL: "https://tracker.example.com/click.php?cnv_id=6f1c2a9e8b7d4c3a&payout=49.90&cnv_status=approved&event1=1&currency=EUR&tx_id=cs_live_a1B2c3D4e5F6g7H8"},
		State: StateRetrying, CreatedAt: at, QueuedAt: at, NextAttempt: at.Add(30 * time.Second),
		MaxAge: 72 * time.Hour, Tries: 1,
		Attempts: []Attempt{{At: at.Add(time.Second), Status: 502, LatencyMS: 87.25, Outcome: "retry", Snippet: "Bad Gateway"}},
	}
}

func BenchmarkEncodeDelivery(b *testing.B) {
	d := benchDelivery()
	b.ReportAllocs()
	for b.Loop() {
		encodeDelivery(d)
	}
}

func BenchmarkDecodeDelivery(b *testing.B) {
	d := benchDelivery()
	v := encodeDelivery(d)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDelivery(d.ID, v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(v)), "record-bytes")
}
