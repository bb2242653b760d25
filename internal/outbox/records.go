// Package outbox is the durable postback queue: conversions and their
// deliveries are committed together with their idempotency markers, and a
// dispatcher sends them with retries, backoff, per-destination pausing, a
// delivery log and dead letters.
package outbox

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/attribution"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

// now is the clock; tests replace it.
var now = time.Now

// State is where a delivery stands.
type State string

// Delivery states.
const (
	StateQueued    State = "queued"
	StateRetrying  State = "retrying"
	StateDelivered State = "delivered"
	StateDead      State = "dead"
)

// Attempt is one try at sending a delivery.
type Attempt struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error,omitempty"`
	Snippet   string    `json:"snippet,omitempty"`
}

// maxAttemptsKept bounds the attempt log of one delivery; the count of
// attempts is kept separately.
const maxAttemptsKept = 20

// Delivery is one postback to one network and its history.
type Delivery struct {
	ID           string           `json:"id"`
	ConversionID string           `json:"conversion_id"`
	Network      string           `json:"network"`
	Event        string           `json:"event"`
	OrderID      string           `json:"order_id"`
	Status       order.Status     `json:"order_status"`
	Key          string           `json:"idempotency_key"`
	Request      postback.Request `json:"request"`
	State        State            `json:"state"`
	CreatedAt    time.Time        `json:"created_at"`
	// QueuedAt starts the max-age clock; a replay resets it.
	QueuedAt    time.Time     `json:"queued_at"`
	NextAttempt time.Time     `json:"next_attempt,omitzero"`
	MaxAge      time.Duration `json:"max_age"`
	Tries       int           `json:"tries"`
	Attempts    []Attempt     `json:"attempts,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Test        bool          `json:"test,omitempty"`
}

// Conversion is the record of an order credited to networks.
type Conversion struct {
	ID         string               `json:"id"`
	Order      order.Order          `json:"order"`
	SessionID  string               `json:"session_id,omitempty"`
	Credits    []attribution.Credit `json:"credits"`
	Deliveries []string             `json:"deliveries"`
	Skipped    []string             `json:"skipped,omitempty"`
	CreatedAt  time.Time            `json:"created_at"`
}

// NewID returns a time-ordered unique ID: 6 bytes of milliseconds, 10
// random bytes, hex.
func NewID() string {
	var b [16]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(now().UnixMilli()))
	copy(b[:6], ms[2:])
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
