package badger

import (
	"encoding/binary"
	"sync"
	"time"
)

// Key layout. Parts are joined by a zero byte, which no ID, network name or
// click ID holds; times are 8 big-endian bytes of Unix nanoseconds, so that
// key order is time order.
//
//	m/<name>                               shared setting (the cookie signing key)
//	s/<session>                            session head: creation time, GA client ID
//	t/<session>\0<network>\0<click id>      touchpoint (JSON)
//	k/<click id>\0<session>\0<network>      click lookup
//	o/<order id>                           order entry (JSON, with its version)
//	a/<key>                                order ID or alias -> order ID
//	i/<idempotency key>                    delivery marker -> delivery ID
//	e/<event key>                          webhook event seen
//	n/<conversion key>                     conversion recorded for the key
//	c/<conversion id>                      conversion (JSON)
//	v/<session>\0<conversion id>            conversions of a session
//	d/<delivery id>                        delivery (JSON)
//	q/<network>\0<due><delivery id>         waiting delivery, by due time: state byte, queued-at
//	r/<lease end><delivery id>             running delivery, by lease end: network, queued-at
//	x/<network>\0<delivery id>              dead delivery
//	w/<entry id>                           webhook log entry (JSON)
//	h/<hour>\0<metric>\0<labels…>           hourly counter (JSON)
//	z/flush                                written and dropped by Purge
//
// Every value starts with its expiry (see encode).
const (
	pMeta       = "m/"
	pHead       = "s/"
	pTouch      = "t/"
	pClick      = "k/"
	pOrder      = "o/"
	pOrderKey   = "a/"
	pDedup      = "i/"
	pEvent      = "e/"
	pConvKey    = "n/"
	pConversion = "c/"
	pSessConv   = "v/"
	pDelivery   = "d/"
	pWaiting    = "q/"
	pRunning    = "r/"
	pDead       = "x/"
	pWebhook    = "w/"
	pStat       = "h/"
)

// key joins a prefix and parts with zero bytes.
func key(prefix string, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// prefixOf is key(prefix, parts...) followed by the separator: the prefix
// of every key below it.
func prefixOf(prefix string, parts ...string) []byte { return append(key(prefix, parts...), 0) }

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(max(t.UnixNano(), 0)))
}

func readTime(b []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(b))) }

// waitingKey indexes a waiting delivery of network due at due.
func waitingKey(network string, due time.Time, id string) []byte {
	return append(appendTime(prefixOf(pWaiting, network), due), id...)
}

// parseWaiting returns the due time and delivery ID of a waiting key of network.
func parseWaiting(network string, k []byte) (time.Time, string) {
	rest := k[len(pWaiting)+len(network)+1:]
	return readTime(rest), string(rest[8:])
}

// runningKey indexes a running delivery by the end of its lease.
func runningKey(lease time.Time, id string) []byte {
	return append(appendTime([]byte(pRunning), lease), id...)
}

// waitingValue is a waiting key's value: the state's first byte and the
// queued-at time, so that queue statistics need no record.
func waitingValue(state string, queuedAt time.Time) []byte {
	return appendTime([]byte{state[0]}, queuedAt)
}

// floors remember, per network, a position at or before every waiting key
// (a due time and a delivery ID), where a claim starts its scan. Claimed
// and settled deliveries leave deletion markers at the front of the
// waiting index until Badger compacts them away; scanning from the very
// front at every claim would step over all of them, and a draining backlog
// of 100,000 would make each claim slower than the last. The position
// holds the ID too, because a backlog queued at one moment shares its due
// time.
//
// Every write that adds a waiting key lowers the floor before it commits
// (and counts itself pending) and reports when it is done; each step bumps
// a generation. A claim raises the floor to the first key it left only if
// the generation it read is unchanged and no write is pending, so a key
// committed behind the claim's snapshot is never left below the floor. The
// floors are also dropped every minute, a full scan costing little then.
type floors struct {
	mu sync.Mutex
	m  map[string]*floor
}

type floor struct {
	at      time.Time // zero: scan from the front
	id      string
	gen     uint64
	pending int
}

// get returns the network's floor and the generation it was read at.
func (f *floors) get(network string) (time.Time, string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[network]
	if fl == nil {
		return time.Time{}, "", 0
	}
	return fl.at, fl.id, fl.gen
}

// lower makes sure a key due at due is at or after the floor; call it
// before the write that adds the key, and done once that write returned.
func (f *floors) lower(network string, due time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[network]
	if fl == nil {
		fl = &floor{}
		f.m[network] = fl
	}
	if !fl.at.IsZero() && !due.After(fl.at) {
		fl.at, fl.id = due, ""
	}
	fl.gen++
	fl.pending++
}

// done ends what lower began, once per call of lower.
func (f *floors) done(network string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[network]
	fl.gen++
	fl.pending--
}

// raise moves the floor up to the key of at and id, if no write added a
// waiting key since the claim read gen.
func (f *floors) raise(network string, at time.Time, id string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[network]
	if fl == nil {
		fl = &floor{}
		f.m[network] = fl
	}
	if fl.gen == gen && fl.pending == 0 && (at.After(fl.at) || at.Equal(fl.at) && id > fl.id) {
		fl.at, fl.id = at, id
	}
}

func (f *floors) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.m {
		fl.at, fl.id = time.Time{}, ""
		fl.gen++
	}
}
