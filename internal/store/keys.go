package store

import (
	"encoding/binary"
	"time"
)

// Key layout. Prefixes are short and typed; numbers are fixed-width big
// endian so that byte order is numeric order.
//
//	meta/<name>                      settings kept by the tracker (the cookie signing key)
//	s/<session id>                   session: its touchpoints (TTL = longest window)
//	sb/<batch id>                    sessions made together, until each has a record of its own
//	o/<order key>                    order seen for a session (page or webhook), for joining
//	i/<network>/<event>/<order id>   idempotency marker → delivery id
//	e/<provider>/<event id>          webhook event already processed
//	c/<conversion id>                conversion record (order × credited touchpoints)
//	d/<delivery id>                  delivery record: request, state, attempts
//	q/<network>/<due nanos><id>      due index of queued deliveries, per destination
//	x/<delivery id>                  dead-letter index
//	w/<webhook id>                   authentic but unparseable webhook, kept for inspection
const (
	PrefixMeta         = "meta/"
	PrefixSession      = "s/"
	PrefixSessionBatch = "sb/"
	PrefixOrder        = "o/"
	PrefixIdempotent   = "i/"
	PrefixEvent        = "e/"
	PrefixConversion   = "c/"
	PrefixDelivery     = "d/"
	PrefixDue          = "q/"
	PrefixDead         = "x/"
	PrefixWebhook      = "w/"
)

// Key joins a prefix and parts with '/'.
func Key(prefix string, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p...)
	}
	return b
}

// DuePrefix is the due-index prefix of one destination.
func DuePrefix(network string) []byte {
	return append(append([]byte(PrefixDue), network...), '/')
}

// DueKey is the due-index key of a delivery: the destination's due prefix,
// the due time as 8 big-endian bytes, then the delivery ID. Each destination
// has its own range, so a backlog at one never hides another's due work.
func DueKey(network string, due time.Time, id string) []byte {
	b := DuePrefix(network)
	b = binary.BigEndian.AppendUint64(b, uint64(max(due.UnixNano(), 0)))
	return append(b, id...)
}

// DueUntil is the first key after every due entry of network at or before t.
func DueUntil(network string, t time.Time) []byte {
	b := DuePrefix(network)
	return binary.BigEndian.AppendUint64(b, uint64(max(t.UnixNano(), 0))+1)
}

// ParseDueKey splits a due-index key of network into its time and delivery ID.
func ParseDueKey(network string, k []byte) (time.Time, string, bool) {
	p := len(PrefixDue) + len(network) + 1
	if len(k) < p+8 {
		return time.Time{}, "", false
	}
	ns := binary.BigEndian.Uint64(k[p:])
	return time.Unix(0, int64(ns)), string(k[p+8:]), true
}
