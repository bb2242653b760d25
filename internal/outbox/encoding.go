package outbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

// deliveryRecord is a delivery as stored: short keys, times as Unix
// nanoseconds, the ID left to the key. Every delivery is written at least
// twice and kept for the delivery log, so its size is most of the store's
// size and of the mapped table files in a large backlog; this form is
// about half of the Delivery's JSON.
type deliveryRecord struct {
	Conversion string        `json:"c,omitempty"`
	Network    string        `json:"n"`
	Event      string        `json:"e,omitempty"`
	OrderID    string        `json:"o,omitempty"`
	Status     order.Status  `json:"os,omitempty"`
	Key        string        `json:"k,omitempty"`
	Method     string        `json:"m"`
	URL        string        `json:"u"`
	Header     http.Header   `json:"h,omitempty"`
	Body       []byte        `json:"b,omitempty"`
	State      State         `json:"s"`
	Created    int64         `json:"ca"`
	Queued     int64         `json:"qa"`
	Next       int64         `json:"na,omitempty"`
	MaxAge     time.Duration `json:"ma,omitempty"`
	Tries      int           `json:"t,omitempty"`
	Attempts   []attemptRec  `json:"a,omitempty"`
	Reason     string        `json:"r,omitempty"`
	Test       bool          `json:"x,omitempty"`
}

type attemptRec struct {
	At      int64   `json:"t"`
	Status  int     `json:"s,omitempty"`
	Latency float64 `json:"l"`
	Outcome string  `json:"o"`
	Error   string  `json:"e,omitempty"`
	Snippet string  `json:"p,omitempty"`
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeDelivery(d *Delivery) ([]byte, error) {
	rec := deliveryRecord{
		Conversion: d.ConversionID, Network: d.Network, Event: d.Event, OrderID: d.OrderID, Status: d.Status,
		Key: d.Key, Method: d.Request.Method, URL: d.Request.URL, Header: d.Request.Header, Body: d.Request.Body,
		State: d.State, Created: unixNano(d.CreatedAt), Queued: unixNano(d.QueuedAt), Next: unixNano(d.NextAttempt),
		MaxAge: d.MaxAge, Tries: d.Tries, Reason: d.Reason, Test: d.Test,
	}
	if len(d.Attempts) > 0 {
		rec.Attempts = make([]attemptRec, len(d.Attempts))
		for i, a := range d.Attempts {
			rec.Attempts[i] = attemptRec{At: unixNano(a.At), Status: a.Status, Latency: a.LatencyMS, Outcome: a.Outcome, Error: a.Error, Snippet: a.Snippet}
		}
	}
	v, err := json.Marshal(&rec)
	if err != nil {
		return nil, fmt.Errorf("encoding delivery: %w", err)
	}
	return v, nil
}

func decodeDelivery(id string, v []byte) (*Delivery, error) {
	var rec deliveryRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decoding delivery %s: %w", id, err)
	}
	d := &Delivery{
		ID: id, ConversionID: rec.Conversion, Network: rec.Network, Event: rec.Event, OrderID: rec.OrderID,
		Status: rec.Status, Key: rec.Key,
		Request: postback.Request{Method: rec.Method, URL: rec.URL, Header: rec.Header, Body: rec.Body},
		State:   rec.State, CreatedAt: fromUnixNano(rec.Created), QueuedAt: fromUnixNano(rec.Queued),
		NextAttempt: fromUnixNano(rec.Next), MaxAge: rec.MaxAge, Tries: rec.Tries, Reason: rec.Reason, Test: rec.Test,
	}
	if len(rec.Attempts) > 0 {
		d.Attempts = make([]Attempt, len(rec.Attempts))
		for i, a := range rec.Attempts {
			d.Attempts[i] = Attempt{At: fromUnixNano(a.At), Status: a.Status, LatencyMS: a.Latency, Outcome: a.Outcome, Error: a.Error, Snippet: a.Snippet}
		}
	}
	return d, nil
}
