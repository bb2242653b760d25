package outbox

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

func TestDeliveryEncodingRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	d := &Delivery{
		ID: NewID(), ConversionID: NewID(), Network: "meta", Event: "purchase", OrderID: "cs_1", Status: order.StatusRefunded,
		Key: "meta/purchase:refunded/cs_1",
		Request: postback.Request{Method: "POST", URL: "https://graph.example/v21.0/1/events",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"data":[]}`)},
		State: StateRetrying, CreatedAt: at, QueuedAt: at.Add(time.Second), NextAttempt: at.Add(time.Minute),
		MaxAge: 72 * time.Hour, Tries: 2, Reason: "replayed", Test: true,
		Attempts: []Attempt{{At: at, Status: 503, LatencyMS: 12.5, Outcome: "retry", Error: "busy", Snippet: "try later"}},
	}
	v, err := encodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeDelivery(d.ID, v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("round trip:\n%+v\n%+v", back, d)
	}
	full, _ := json.Marshal(d)
	if len(v)*10 > len(full)*8 {
		t.Errorf("stored form is %d bytes, the API form %d: the compact form lost its point", len(v), len(full))
	}
}
