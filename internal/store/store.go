// Package store holds caddy-postback's storage ports: domain-level
// operations on sessions, the ledger of orders and conversions, the delivery
// queue, the webhook log and shared settings, each taking a context. Engines
// (store/badger, the embedded default, and store/postgres, for several Caddy
// nodes sharing one database) implement Store; storetest is the one
// behavioural suite every engine must pass. Nothing here knows of Caddy, and
// no caller builds keys: each engine lays out its data as it sees fit.
//
// Time: every method that decides by time takes it from the caller, so that
// tests can move a clock; engines never read the wall clock to decide what
// is live or due (they may use it to remove what expired long ago).
//
// Order: record IDs are made by record.NewID and sort by creation time;
// listings are newest first, by ID, and a page's cursor is the last ID it
// holds.
package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Errors engines return; test them with errors.Is.
var (
	// ErrNotFound: no such (live) record.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the storage cannot serve now (unreachable database,
	// closed store, too little free space, read-only or missing directory).
	// The caller degrades (skips capture, answers a webhook 503), and the
	// store comes back by itself.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrFull wraps ErrUnavailable: the free-space guard refused a write.
	ErrFull = &wrappedErr{msg: "too little free space", err: ErrUnavailable}
	// ErrLeaseLost: the delivery is no longer leased to this owner (its
	// lease ran out and it was rescued, or this owner never claimed it).
	ErrLeaseLost = errors.New("delivery not leased to this owner")
	// ErrState: the delivery's state does not allow the change.
	ErrState = errors.New("delivery state does not allow this")
	// ErrConflict: the order entry changed since the caller read it; read
	// it again and retry.
	ErrConflict = errors.New("order entry changed concurrently")
	// ErrExists: a session with that ID exists already.
	ErrExists = errors.New("already exists")
)

type wrappedErr struct {
	msg string
	err error
}

func (w *wrappedErr) Error() string { return w.err.Error() + ": " + w.msg }
func (w *wrappedErr) Unwrap() error { return w.err }

// Store is everything the tracker keeps.
type Store interface {
	Sessions
	Ledger
	Queue
	Webhooks
	Meta
	Stats
	// Ping reports whether the store can serve reads and writes now; its
	// error wraps ErrUnavailable when it cannot.
	Ping(ctx context.Context) error
	// Close releases the store. It is called once, by its owner.
	Close() error
}

// Sessions keeps visitors' sessions and their touchpoints. A session exists
// while it has a live touchpoint. A click writes at most its own
// touchpoints, whatever the session holds already.
type Sessions interface {
	// CreateSession stores a new session with the touchpoints of its first
	// click; its ID is new and random. ErrExists if the ID is taken.
	CreateSession(ctx context.Context, s *record.Session) error
	// AddTouchpoints adds touchpoints to a live session at time now: a
	// touchpoint with the network and click ID of a stored one replaces
	// it; beyond max touchpoints the oldest are removed. A non-empty
	// gaClientID replaces the session's. ErrNotFound when the session has
	// no live touchpoint (it expired or was erased): it is not revived.
	AddTouchpoints(ctx context.Context, id string, tps []record.Touchpoint, gaClientID string, max int, now time.Time) error
	// Session returns a session with its touchpoints live at now, oldest
	// first, or ErrNotFound.
	Session(ctx context.Context, id string, now time.Time) (*record.Session, error)
	// FindClicks returns the live touchpoints with this click ID, of any
	// network, newest first, at most limit.
	FindClicks(ctx context.Context, clickID string, now time.Time, limit int) ([]ClickMatch, error)
	// EraseSession removes a session and every copy of its personal data at
	// once: its touchpoints, and the touchpoints copied into its
	// conversions, their order entries (record.Touchpoint.Scrub) and their
	// deliveries (record.Delivery.Scrub); the conversions are no longer
	// tied to the session (SessionID cleared), the order entries keep
	// record.Erased as their session so that no other visitor takes the
	// orders, and deliveries that wait or run are buried with reason
	// ReasonErased and kept until keepDeadUntil. It reports whether the
	// session had anything stored.
	EraseSession(ctx context.Context, id string, now, keepDeadUntil time.Time) (bool, error)
}

// ReasonErased is the dead-letter reason of deliveries cancelled by an
// erasure.
const ReasonErased = "erased at the visitor's request"

// ClickMatch is a touchpoint found by its click ID, with its session.
type ClickMatch struct {
	SessionID  string            `json:"session_id"`
	Touchpoint record.Touchpoint `json:"touchpoint"`
}

// OrderEntry is the order index: what is known of an order under its ID and
// aliases, so that a confirmation page and a webhook join in either order,
// and a refund weeks later reaches the networks credited with the sale.
type OrderEntry struct {
	// OrderID is the ID the networks were given.
	OrderID string `json:"order_id"`
	// SessionID is the session the order is tied to; once set, no other
	// session can take the order (engines keep the first one).
	SessionID string `json:"session_id,omitempty"`
	// Credits are the networks credited with the sale.
	Credits []record.Credit `json:"credits,omitempty"`
	// Order is the order as last recorded; zero when a page only linked
	// the ID to a session.
	Order order.Order `json:"order"`
	// Version counts writes of the entry; 0 means there is none.
	Version int64 `json:"version"`
	// ExpiresAt is when the entry is removed.
	ExpiresAt time.Time `json:"expires_at"`
}

// Recording is one atomic write to the ledger: everything in it is
// committed together, or nothing is.
type Recording struct {
	// EventKey, when set, marks the whole recording (a webhook's provider
	// and event ID): a later recording with it writes nothing and reports
	// SeenEvent. It is kept until EventUntil.
	EventKey   string
	EventUntil time.Time
	// Entry is stored as the one entry of Entry.OrderID, found from then on
	// by each of OrderKeys (the order ID and its aliases; a key that found
	// another entry is moved to this one). Prior is the Version of the
	// entry the caller read with FindOrder(OrderKeys) (0: none): if the
	// entry those keys find now has another version, nothing is written and
	// Record returns ErrConflict. A nil Entry leaves the index alone.
	OrderKeys []string
	Prior     int64
	Entry     *OrderEntry
	// Conversion is stored when one of Deliveries is queued, or, when none
	// is, if no conversion with ConversionKey was stored before (so that a
	// reloaded thank-you page records nothing twice). Nil stores none.
	Conversion    *record.Conversion
	ConversionKey string
	// Deliveries are queued unless their idempotency Key is already marked
	// (until DedupUntil), in which case they are left out and reported as
	// duplicates. The engine sets ConversionID, State (queued), QueuedAt
	// and NextAttempt (Now); the caller sets the rest.
	Deliveries []record.Delivery
	DedupUntil time.Time
	// Now is the recording's time.
	Now time.Time
}

// Recorded says what Record wrote.
type Recorded struct {
	// SeenEvent: the EventKey was recorded before; nothing was written.
	SeenEvent bool
	// Conversion is the stored conversion (Deliveries lists the queued
	// ones, and Skipped names the networks left out as duplicates), nil
	// when none was stored.
	Conversion *record.Conversion
	// Queued are the IDs of the deliveries written.
	Queued []string
	// Duplicates are the idempotency keys already marked.
	Duplicates []string
	// Entry is the order entry as stored after the recording (nil when the
	// recording had none).
	Entry *OrderEntry
}

// ConversionQuery selects conversions, newest first. Zero fields do not
// filter.
type ConversionQuery struct {
	// Network is a credited network.
	Network string
	Event   string
	Status  order.Status
	// Source is the order's source: "page", "webhook" (which matches each
	// provider's "webhook:<provider>"), "endpoint", "test", or a full
	// source such as "webhook:stripe" (see SourceIs).
	Source    string
	SessionID string
	// Since and Until bound the creation time: at or after Since, before
	// Until.
	Since time.Time
	Until time.Time
	// Cursor continues a listing where the previous page ended ("" starts).
	Cursor string
	// Limit bounds the page (see Limit).
	Limit int
}

// The values the listing filters take, for those who check a filter
// before asking: delivery states, order statuses, conversion sources (see
// ConversionQuery.Source) and webhook log results.
var (
	FilterStates = func() []string {
		var s []string
		for _, st := range record.States {
			s = append(s, string(st))
		}
		return s
	}()
	FilterStatuses       = []string{string(order.StatusApproved), string(order.StatusPending), string(order.StatusRejected), string(order.StatusRefunded)}
	FilterSources        = []string{"page", "webhook", "endpoint", "test"}
	FilterWebhookResults = []string{record.WebhookRecorded, record.WebhookDuplicate, record.WebhookIgnored, record.WebhookKept, record.WebhookRejected, record.WebhookFailed}
)

// Ledger keeps orders, conversions and the idempotency markers.
type Ledger interface {
	// FindOrder returns the order entry stored under any of ids (the first
	// found, in the order given), or a zero entry (Version 0).
	FindOrder(ctx context.Context, ids []string, now time.Time) (OrderEntry, error)
	// Record writes a recording atomically (see Recording).
	Record(ctx context.Context, r Recording) (Recorded, error)
	// Conversion returns one conversion.
	Conversion(ctx context.Context, id string, now time.Time) (*record.Conversion, error)
	// Conversions lists conversions, newest first, and the cursor of the
	// next page ("" after the last).
	Conversions(ctx context.Context, q ConversionQuery, now time.Time) ([]record.Conversion, string, error)
	// SessionConversions counts the conversions of a session created at or
	// after since.
	SessionConversions(ctx context.Context, sessionID string, since, now time.Time) (int, error)
}

// DeliveryQuery selects deliveries, newest first. Zero fields do not
// filter.
type DeliveryQuery struct {
	State        record.State
	Network      string
	ConversionID string
	Cursor       string
	Limit        int
}

// NetworkQueue describes the deliveries of one network.
type NetworkQueue struct {
	Network  string `json:"network"`
	Queued   int    `json:"queued"`
	Retrying int    `json:"retrying"`
	Running  int    `json:"running"`
	Dead     int    `json:"dead"`
	// OldestWaiting is the QueuedAt of the oldest waiting or running
	// delivery; zero when none.
	OldestWaiting time.Time `json:"oldest_waiting,omitzero"`
	// NextDue is the earliest NextAttempt of a waiting delivery.
	NextDue time.Time `json:"next_due,omitzero"`
}

// Queue holds deliveries. A dispatcher claims due deliveries with a lease;
// only the owner of a lease can settle the delivery, and a lease that runs
// out is rescued back to the queue. Delivery is at least once; once an
// outcome is recorded, a delivery is never claimed again unless replayed.
type Queue interface {
	// Claim leases up to limit deliveries of network that wait and are due
	// at now, earliest due first, to owner until leaseUntil: they become
	// running. It also returns the earliest NextAttempt among those still
	// waiting (zero when none). A delivery is never leased to two owners at
	// once.
	Claim(ctx context.Context, network, owner string, limit int, now, leaseUntil time.Time) ([]record.Delivery, time.Time, error)
	// Complete records a successful attempt: the delivery is delivered and
	// kept until keepUntil. request is the request sent, masked.
	Complete(ctx context.Context, id, owner string, at record.Attempt, request record.Request, keepUntil time.Time) error
	// Retry records a failed attempt; the delivery waits until next.
	Retry(ctx context.Context, id, owner string, at record.Attempt, request record.Request, next time.Time) error
	// Bury records a final failure: the delivery is dead with reason and
	// kept until keepUntil. at is nil when no attempt was made.
	Bury(ctx context.Context, id, owner string, at *record.Attempt, request record.Request, reason string, keepUntil time.Time) error
	// Release gives a running delivery back without counting an attempt
	// (a stopping dispatcher, a paused network); it is due at due.
	Release(ctx context.Context, id, owner string, due time.Time) error
	// Rescue returns running deliveries whose lease ended before now to the
	// queue, due now, and reports how many.
	Rescue(ctx context.Context, now time.Time) (int, error)
	// Replay queues a dead or delivered delivery again, due now; its
	// max-age clock starts over and its attempt log is kept. ErrState for a
	// delivery that waits or runs.
	Replay(ctx context.Context, id string, now time.Time) (*record.Delivery, error)
	// ReplayDead replays every dead delivery of a network and reports how
	// many.
	ReplayDead(ctx context.Context, network string, now time.Time) (int, error)
	// Delivery returns one delivery.
	Delivery(ctx context.Context, id string, now time.Time) (*record.Delivery, error)
	// Deliveries lists deliveries, newest first, and the next page's cursor.
	Deliveries(ctx context.Context, q DeliveryQuery, now time.Time) ([]record.Delivery, string, error)
	// QueueStats describes every network that has deliveries waiting,
	// running or dead, sorted by network.
	QueueStats(ctx context.Context, now time.Time) ([]NetworkQueue, error)
}

// WebhookQuery selects webhook log entries, newest first.
type WebhookQuery struct {
	Provider string
	Result   string
	Cursor   string
	Limit    int
}

// Webhooks keeps the webhook log.
type Webhooks interface {
	// LogWebhook adds an entry to the webhook log.
	LogWebhook(ctx context.Context, e record.WebhookEntry) error
	// Webhook returns one entry.
	Webhook(ctx context.Context, id string, now time.Time) (*record.WebhookEntry, error)
	// WebhookLog lists entries, newest first, and the next page's cursor.
	WebhookLog(ctx context.Context, q WebhookQuery, now time.Time) ([]record.WebhookEntry, string, error)
}

// Stat is one counter of an hour: what the dashboard's overview sums over a
// period without reading every record. Labels that do not apply are "".
type Stat struct {
	// Hour is the counted hour (UTC, truncated).
	Hour time.Time `json:"hour"`
	// Metric names what is counted: StatClicks, StatSessions,
	// StatConversions, StatAttempts, StatWebhooks.
	Metric string `json:"metric"`
	// Network, Event, Currency and Result label the count.
	Network  string `json:"network,omitempty"`
	Event    string `json:"event,omitempty"`
	Currency string `json:"currency,omitempty"`
	Result   string `json:"result,omitempty"`
	// Count is how many; Sum adds a quantity: revenue in the currency's
	// minor units for conversions, latency in microseconds for attempts.
	Count int64 `json:"count"`
	Sum   int64 `json:"sum"`
}

// Stat metrics.
const (
	StatClicks      = "clicks"      // by network
	StatSessions    = "sessions"    // new sessions
	StatConversions = "conversions" // by network credited ("" for none), event, currency, result
	StatAttempts    = "attempts"    // by network and result (delivered, retrying, dead)
	StatWebhooks    = "webhooks"    // by network (the provider) and result
)

// StatAllNetworks is the network label of the conversion counters that
// count every conversion once, credited or not, beside one counter per
// credited network.
const StatAllNetworks = "*"

// Stats keeps hourly counters, added to by every node.
type Stats interface {
	// AddStats adds counts (and sums) to their hours' counters.
	AddStats(ctx context.Context, stats []Stat) error
	// Stats returns the counters of the hours from since (inclusive) to
	// until (exclusive), one per hour and labels, in no set order.
	Stats(ctx context.Context, since, until time.Time) ([]Stat, error)
}

// Meta keeps values every node of a cluster must share.
type Meta interface {
	// MetaGetOrCreate returns the value stored under name, storing
	// create's value first if there is none. Concurrent callers, on any
	// node, all get the one value stored.
	MetaGetOrCreate(ctx context.Context, name string, create func() []byte) ([]byte, error)
}

// SourceIs reports whether an order's source matches a source filter: the
// same source, or the filter's kind ("webhook" for "webhook:stripe").
func SourceIs(source, filter string) bool {
	kind, _, _ := strings.Cut(source, ":")
	return source == filter || kind == filter
}

// MaxLimit caps the page size of every listing.
const MaxLimit = 500

// Limit returns a listing's page size: n capped at MaxLimit, 50 when n is
// not positive.
func Limit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}
