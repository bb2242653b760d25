package outbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/codec"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

// A delivery is stored in the compact binary form of package codec. Every
// delivery is written at least twice (queued, then its outcome) and kept
// for the delivery log, so its size is most of the store's size and of the
// mapped table files while a backlog drains. The binary form is 35-50% of
// the Delivery's JSON and 55-70% of the short-key JSON stored before it,
// and is encoded and decoded several times faster with fewer allocations.
//
// The record is the format byte deliveryFormat, then these fields in this
// order (the ID is left to the key):
//
//	ConversionID, Network, Event, OrderID, Status, Key  strings
//	Request.Method, Request.URL                         strings
//	Request.Header  count of keys, then per key in sorted order:
//	                the name, a count of values and the values
//	Request.Body    bytes
//	State           string
//	CreatedAt, QueuedAt, NextAttempt  Unix nanoseconds (Int), 0 for the zero time
//	MaxAge          nanoseconds (Int)
//	Tries           Uint
//	Attempts        count, then per attempt: At (Unix nanoseconds, Int),
//	                Status (Uint), LatencyMS (Float), Outcome, Error, Snippet
//	Reason          string
//	Test            Bool
//
// A change to the fields or their order needs a new format byte, with the
// old one still read.
const deliveryFormat = 'D'

// The fewest bytes a list item takes in a delivery record, for
// codec.Reader.Count: a header key is a name and a count of values, a
// header value a length, and an attempt two varints, a float and three
// strings.
const (
	minHeaderKeyBytes   = 2
	minHeaderValueBytes = 1
	minAttemptBytes     = 1 + 1 + 8 + 3
)

// deliveryRecord is the JSON form of a stored delivery written before the
// binary form: short keys, times as Unix nanoseconds, the ID left to the
// key. It is still read, so stores written by earlier versions keep
// working; a JSON record is rewritten in the binary form the next time its
// delivery is written.
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

// attemptRec is an attempt in the JSON form of a stored delivery.
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

// encodeDelivery returns the stored form of d, the binary record described
// at deliveryFormat.
func encodeDelivery(d *Delivery) []byte {
	r := &d.Request
	// A capacity hint: the long fields, plus room for the short ones and an
	// attempt's worth of numbers and snippet per attempt.
	size := 160 + len(d.Key) + len(r.URL) + len(r.Body) + 96*len(d.Attempts)
	w := codec.NewWriter(deliveryFormat, size)
	w.String(d.ConversionID)
	w.String(d.Network)
	w.String(d.Event)
	w.String(d.OrderID)
	w.String(string(d.Status))
	w.String(d.Key)
	w.String(r.Method)
	w.String(r.URL)
	encodeHeader(w, r.Header)
	w.Bytes(r.Body)
	w.String(string(d.State))
	w.Int(unixNano(d.CreatedAt))
	w.Int(unixNano(d.QueuedAt))
	w.Int(unixNano(d.NextAttempt))
	w.Int(int64(d.MaxAge))
	w.Uint(uint64(d.Tries))
	w.Uint(uint64(len(d.Attempts)))
	for i := range d.Attempts {
		a := &d.Attempts[i]
		w.Int(unixNano(a.At))
		w.Uint(uint64(a.Status))
		w.Float(a.LatencyMS)
		w.String(a.Outcome)
		w.String(a.Error)
		w.String(a.Snippet)
	}
	w.String(d.Reason)
	w.Bool(d.Test)
	return w.Data()
}

// encodeHeader writes h with its keys sorted, so that equal deliveries
// have equal records.
func encodeHeader(w *codec.Writer, h http.Header) {
	w.Uint(uint64(len(h)))
	if len(h) == 0 {
		return
	}
	var arr [8]string
	keys := arr[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.String(k)
		vs := h[k]
		w.Uint(uint64(len(vs)))
		for _, v := range vs {
			w.String(v)
		}
	}
}

// decodeDelivery reads a stored delivery in either form: a record starting
// with '{' is the JSON form of earlier versions, any other the binary form.
// Both give the same Delivery for the same fields: an empty header, header
// value list or body is nil, and a zero time is the zero time.Time.
func decodeDelivery(id string, v []byte) (*Delivery, error) {
	if len(v) > 0 && v[0] == '{' {
		return decodeDeliveryJSON(id, v)
	}
	r := codec.NewReader(v, deliveryFormat)
	d := &Delivery{ID: id}
	d.ConversionID = r.String()
	d.Network = r.String()
	d.Event = r.String()
	d.OrderID = r.String()
	d.Status = order.Status(r.String())
	d.Key = r.String()
	d.Request.Method = r.String()
	d.Request.URL = r.String()
	d.Request.Header = decodeHeader(r)
	d.Request.Body = r.Bytes()
	d.State = State(r.String())
	d.CreatedAt = fromUnixNano(r.Int())
	d.QueuedAt = fromUnixNano(r.Int())
	d.NextAttempt = fromUnixNano(r.Int())
	d.MaxAge = time.Duration(r.Int())
	d.Tries = int(r.Uint())
	if n := r.Count(minAttemptBytes); n > 0 {
		d.Attempts = make([]Attempt, n)
		for i := range d.Attempts {
			a := &d.Attempts[i]
			a.At = fromUnixNano(r.Int())
			a.Status = int(r.Uint())
			a.LatencyMS = r.Float()
			a.Outcome = r.String()
			a.Error = r.String()
			a.Snippet = r.String()
		}
	}
	d.Reason = r.String()
	d.Test = r.Bool()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decoding delivery %s: %w", id, err)
	}
	return d, nil
}

// decodeHeader reads a header written by encodeHeader. It does not check
// that the keys are sorted: only the encoder needs to be deterministic.
func decodeHeader(r *codec.Reader) http.Header {
	n := r.Count(minHeaderKeyBytes)
	if n == 0 {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k := r.String()
		var vs []string
		if m := r.Count(minHeaderValueBytes); m > 0 {
			vs = make([]string, m)
			for j := range vs {
				vs[j] = r.String()
			}
		}
		h[k] = vs
	}
	return h
}

// decodeDeliveryJSON reads the JSON form written before the binary form.
func decodeDeliveryJSON(id string, v []byte) (*Delivery, error) {
	var rec deliveryRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decoding delivery %s: %w", id, err)
	}
	// Empty lists read as nil, as in the binary form.
	if len(rec.Header) == 0 {
		rec.Header = nil
	}
	for k, vs := range rec.Header {
		if len(vs) == 0 {
			rec.Header[k] = nil
		}
	}
	if len(rec.Body) == 0 {
		rec.Body = nil
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
