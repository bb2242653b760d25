// Package record holds the records of caddy-postback's data model that the
// storage ports keep: touchpoints and sessions, conversions with their
// credits, deliveries with their attempts, and webhook log entries. Orders
// and exact amounts are in package order. It is plain data with a few
// helpers that every engine shares; it knows nothing of Caddy or of any
// engine.
package record

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Touchpoint is one captured click.
type Touchpoint struct {
	// Network is the configured network the click belongs to.
	Network string `json:"network"`
	// Param is the landing-URL parameter that carried the click ID.
	Param string `json:"param,omitempty"`
	// ClickID is the click ID exactly as the network sent it.
	ClickID string `json:"click_id"`
	// CapturedAt is when the click landed (or was last repeated).
	CapturedAt time.Time `json:"captured_at"`
	// ExpiresAt closes the network's attribution window for this click.
	ExpiresAt time.Time `json:"expires_at"`
	// LandingURL, Referrer, ClientIP and UserAgent describe the landing
	// request; they are personal data, removed by an erasure.
	LandingURL string `json:"landing_url,omitempty"`
	Referrer   string `json:"referrer,omitempty"`
	ClientIP   string `json:"client_ip,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	// Subs are the sub IDs and UTM values of the landing URL.
	Subs map[string]string `json:"subs,omitempty"`
	// Consent is what the visitor had agreed to when the click landed;
	// nil when no consent signal is configured.
	Consent *Consent `json:"consent,omitempty"`
}

// Consent values.
const (
	Granted = "granted"
	Denied  = "denied"
)

// Consent is a visitor's consent as read when a click landed.
type Consent struct {
	// AdUserData and AdPersonalization are Google's consent signals
	// (Granted, Denied, or "" when not known), passed to the APIs that
	// take them; AdUserData also decides whether hashed customer
	// identifiers may be sent with a conversion.
	AdUserData        string `json:"ad_user_data,omitempty"`
	AdPersonalization string `json:"ad_personalization,omitempty"`
	// Purposes are the consent purposes granted (IAB TCF purpose numbers
	// or configured names).
	Purposes []string `json:"purposes,omitempty"`
}

// SubParams are the landing-URL parameters kept with a touchpoint besides
// the click ID, so postbacks can echo them ({sub1}, {utm_source}, …).
var SubParams = []string{
	"sub1", "sub2", "sub3", "sub4", "sub5", "sub6", "sub7", "sub8", "sub9", "sub10",
	"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
}

// Erased is what personal values read after an erasure.
const Erased = "erased"

// Scrub removes the personal data of a touchpoint (the click ID and what
// the landing request said of the visitor), keeping the network and the
// times, so that the conversion it earned still reads sensibly.
func (tp *Touchpoint) Scrub() {
	if tp.ClickID != "" {
		tp.ClickID = Erased
	}
	tp.LandingURL, tp.Referrer, tp.ClientIP, tp.UserAgent = "", "", "", ""
	tp.Subs = nil
}

// Session is what the tracker knows of one visitor with a session cookie.
type Session struct {
	// ID is the session's random ID (the cookie's unsigned part).
	ID string `json:"id"`
	// CreatedAt is the time of the session's first stored click.
	CreatedAt time.Time `json:"created_at"`
	// Touchpoints are the session's live clicks, oldest first.
	Touchpoints []Touchpoint `json:"touchpoints"`
	// GAClientID is the Google Analytics client ID read from the _ga
	// cookie, for Measurement Protocol postbacks.
	GAClientID string `json:"ga_client_id,omitempty"`
}

// Live returns the touchpoints whose window has not closed at t.
func (s *Session) Live(t time.Time) []Touchpoint {
	var out []Touchpoint
	for _, tp := range s.Touchpoints {
		if t.Before(tp.ExpiresAt) {
			out = append(out, tp)
		}
	}
	return out
}

// Credit is a network credited with a conversion, and why.
type Credit struct {
	Network    string     `json:"network"`
	Touchpoint Touchpoint `json:"touchpoint"`
	Reason     string     `json:"reason"`
}

// Conversion is the record of an order and the networks it was credited
// to: the attribution decision, the deliveries it queued and why others
// were not sent.
type Conversion struct {
	ID    string      `json:"id"`
	Order order.Order `json:"order"`
	// SessionID is the visitor's session, when the order was tied to one.
	SessionID string `json:"session_id,omitempty"`
	// Credits are the credited networks and the touchpoints that earned them.
	Credits []Credit `json:"credits"`
	// Decision says in words how the credits were decided (or why none).
	Decision string `json:"decision,omitempty"`
	// Deliveries are the IDs of the postbacks this conversion queued.
	Deliveries []string `json:"deliveries"`
	// Skipped explains credited networks that were sent nothing.
	Skipped []string `json:"skipped"`
	// Held, when set, says why no postback was sent at all (an invalid
	// amount or currency, a session over its daily limit).
	Held      string    `json:"held,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the record is removed.
	ExpiresAt time.Time `json:"expires_at"`
}

// Postback is what a delivery's request is rendered from, at every attempt,
// with the network's template as configured then: the credited order and
// touchpoint.
type Postback struct {
	// ConversionID identifies the conversion record.
	ConversionID string `json:"conversion_id"`
	// Network is the credited network's name.
	Network string `json:"network"`
	// Order is the order as the shop reported it.
	Order order.Order `json:"order"`
	// Touchpoint is the credited click.
	Touchpoint Touchpoint `json:"touchpoint"`
	// GAClientID is the visitor's Google Analytics client ID, if known.
	GAClientID string `json:"ga_client_id,omitempty"`
	// Time is when the conversion was detected.
	Time time.Time `json:"time"`
	// Test marks a test fire.
	Test bool `json:"test,omitempty"`
}

// Request is a rendered postback.
type Request struct {
	// Method is the HTTP method.
	Method string `json:"method"`
	// URL is the full request URL, every value already escaped.
	URL string `json:"url"`
	// Header holds the request headers (Content-Type, auth).
	Header http.Header `json:"header,omitempty"`
	// Body is the request body, if any.
	Body string `json:"body,omitempty"`
}

// State is where a delivery stands.
type State string

// Delivery states. Queued and retrying deliveries wait for their next
// attempt; a running one is leased to one dispatcher (Owner) until
// LeaseUntil; delivered and dead ones are final until replayed.
const (
	StateQueued    State = "queued"
	StateRetrying  State = "retrying"
	StateRunning   State = "running"
	StateDelivered State = "delivered"
	StateDead      State = "dead"
)

// States lists every delivery state, in the order a delivery moves through them.
var States = []State{StateQueued, StateRetrying, StateRunning, StateDelivered, StateDead}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// Waiting reports whether a delivery in state s waits to be claimed.
func (s State) Waiting() bool { return s == StateQueued || s == StateRetrying }

// Attempt is one try at sending a delivery.
type Attempt struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error,omitempty"`
	Snippet   string    `json:"snippet,omitempty"`
}

// MaxAttemptsKept bounds the attempt log of one delivery: the first attempt
// and the latest ones are kept; Tries counts them all.
const MaxAttemptsKept = 20

// Delivery is one postback to one network and its history.
type Delivery struct {
	ID           string       `json:"id"`
	ConversionID string       `json:"conversion_id"`
	Network      string       `json:"network"`
	Event        string       `json:"event"`
	OrderID      string       `json:"order_id"`
	Status       order.Status `json:"order_status"`
	// Key is the idempotency key: (network, event, order ID).
	Key string `json:"idempotency_key"`
	// Postback is what the request is rendered from at each attempt.
	Postback Postback `json:"postback"`
	// Request is the request last rendered, with every secret masked: what
	// the delivery log shows.
	Request Request `json:"request"`
	State   State   `json:"state"`
	// CreatedAt is when the conversion queued the delivery.
	CreatedAt time.Time `json:"created_at"`
	// QueuedAt starts the max-age clock; a replay resets it.
	QueuedAt time.Time `json:"queued_at"`
	// NextAttempt is when a waiting delivery is due.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// MaxAge is how long the delivery is retried before it is dead.
	MaxAge time.Duration `json:"max_age"`
	// Tries counts the attempts made.
	Tries    int       `json:"tries"`
	Attempts []Attempt `json:"attempts"`
	// Reason says why a delivery is dead, or that it was replayed.
	Reason string `json:"reason,omitempty"`
	Test   bool   `json:"test,omitempty"`
	// Owner and LeaseUntil are set while the delivery is running.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// ExpiresAt is when a delivered or dead delivery is removed; zero
	// while it waits or runs.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// AddAttempt appends an attempt to the log and counts it, keeping the first
// attempt and the latest ones within MaxAttemptsKept.
func (d *Delivery) AddAttempt(at Attempt) {
	d.Tries++
	d.Attempts = append(d.Attempts, at)
	if n := len(d.Attempts); n > MaxAttemptsKept {
		d.Attempts = append(d.Attempts[:1], d.Attempts[n-MaxAttemptsKept+1:]...)
	}
}

// Scrub removes the personal data of a delivery after an erasure: the
// credited touchpoint, the request shown in the log (it carries the click
// ID) and the answers' snippets (which may echo it).
func (d *Delivery) Scrub() {
	d.Postback.Touchpoint.Scrub()
	d.Request = Request{Method: d.Request.Method, URL: Erased}
	for i := range d.Attempts {
		d.Attempts[i].Snippet = ""
	}
}

// NewID returns a new record ID made at t: 12 hex digits of Unix
// milliseconds, then 20 of random, so that IDs sort by creation time.
// Within one process, IDs made in one millisecond also sort in the order
// they were made (the random part of the first, counted up); an ID always
// tells its own millisecond (IDTime). Listings are ordered by ID.
func NewID(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	var b [16]byte
	lastID.Lock()
	if ms == lastID.ms {
		lastID.lo++
		if lastID.lo == 0 {
			lastID.hi++
		}
	} else {
		var r [10]byte
		_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on supported platforms
		lastID.ms = ms
		// Leave the top bit of the random part clear, so that counting up
		// within a millisecond never wraps.
		lastID.hi = binary.BigEndian.Uint16(r[:2]) & 0x7fff
		lastID.lo = binary.BigEndian.Uint64(r[2:])
	}
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(lastID.hi))
	binary.BigEndian.PutUint64(b[8:], lastID.lo)
	lastID.Unlock()
	return hex.EncodeToString(b[:])
}

// lastID is the last ID made, for NewID's order within a millisecond.
var lastID struct {
	sync.Mutex
	ms uint64
	hi uint16
	lo uint64
}

// IDTime returns the creation time encoded in an ID made by NewID, to the
// millisecond, or false for another ID.
func IDTime(id string) (time.Time, bool) {
	if len(id) != 32 {
		return time.Time{}, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[2:], []byte(id[:12])); err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:]))), true
}

// IDFloor returns the smallest ID NewID can make at t: IDs of records made
// at or after t sort at or after it.
func IDFloor(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(t.UnixMilli(), 0))<<16)
	return hex.EncodeToString(b[:])
}

// Webhook results, as the webhook log records them.
const (
	WebhookRecorded  = "recorded"
	WebhookDuplicate = "duplicate"
	WebhookIgnored   = "ignored"
	WebhookKept      = "kept"
	WebhookRejected  = "rejected"
	WebhookFailed    = "failed"
)

// WebhookEntry is one webhook received, as the webhook log keeps it.
type WebhookEntry struct {
	ID         string    `json:"id"`
	Provider   string    `json:"provider"`
	Path       string    `json:"path"`
	ReceivedAt time.Time `json:"received_at"`
	// Result is one of the Webhook* results.
	Result string `json:"result"`
	// Reason says why a webhook was rejected, ignored or kept.
	Reason  string `json:"reason,omitempty"`
	EventID string `json:"event_id,omitempty"`
	OrderID string `json:"order_id,omitempty"`
	// ConversionID is the conversion the webhook recorded, if any.
	ConversionID string `json:"conversion_id,omitempty"`
	// Payload is the body, kept only for authentic webhooks that could not
	// be read, so the operator can inspect them.
	Payload   string    `json:"payload,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}
