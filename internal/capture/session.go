package capture

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/codec"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// now is the clock; tests replace it.
var now = time.Now

// Touchpoint is one captured click.
type Touchpoint struct {
	Network    string            `json:"network"`
	Param      string            `json:"param"`
	ClickID    string            `json:"click_id"`
	CapturedAt time.Time         `json:"captured_at"`
	ExpiresAt  time.Time         `json:"expires_at"`
	LandingURL string            `json:"landing_url,omitempty"`
	Referrer   string            `json:"referrer,omitempty"`
	ClientIP   string            `json:"client_ip,omitempty"`
	UserAgent  string            `json:"user_agent,omitempty"`
	Subs       map[string]string `json:"subs,omitempty"`
}

// Session is what the tracker knows of one visitor with a session cookie.
type Session struct {
	ID          string       `json:"id"`
	CreatedAt   time.Time    `json:"created_at"`
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

// Sessions keeps sessions in the store.
type Sessions struct {
	Store store.Store
	// Earlier, when set, is a store that may still hold sessions written
	// before Store was theirs. A session missing from Store is looked up
	// there, moves to Store with its next click, and is erased from both.
	Earlier store.Store
	// MaxTouchpoints caps a session's touchpoints; the oldest go first.
	MaxTouchpoints int
	// TTL is how long a session is kept after its last click (the longest
	// attribution window).
	TTL time.Duration

	groupOnce sync.Once
	group     *store.Group[*newSession]
}

// DefaultMaxTouchpoints is the per-session touchpoint cap.
const DefaultMaxTouchpoints = 20

// Add records touchpoints in the session, creating the session if needed,
// in one small transaction. A repeat of the same click (a reloaded landing
// page) refreshes the existing touchpoint instead of adding one.
func (s *Sessions) Add(id string, tps []Touchpoint, gaClientID string) error {
	key := store.Key(store.PrefixSession, id)
	return s.Store.Update(func(txn store.Txn) error {
		sess, err := lookup(txn, key, id)
		if errors.Is(err, store.ErrNotFound) {
			sess, err = s.earlier(key)
		}
		if errors.Is(err, store.ErrNotFound) {
			sess = &Session{ID: id, CreatedAt: now()}
		} else if err != nil {
			return err
		}
		s.merge(sess, tps)
		if gaClientID != "" {
			sess.GAClientID = gaClientID
		}
		return putSession(txn, key, sess, s.TTL)
	})
}

// merge adds touchpoints to a session: a repeat of a click it has (a
// reloaded landing page, or the same click twice in one URL) moves to the
// end, and the oldest go beyond the cap.
func (s *Sessions) merge(sess *Session, tps []Touchpoint) {
	for _, tp := range tps {
		for i, old := range sess.Touchpoints {
			if old.Network == tp.Network && old.ClickID == tp.ClickID {
				sess.Touchpoints = append(sess.Touchpoints[:i], sess.Touchpoints[i+1:]...)
				break
			}
		}
		sess.Touchpoints = append(sess.Touchpoints, tp)
	}
	limit := s.MaxTouchpoints
	if limit <= 0 {
		limit = DefaultMaxTouchpoints
	}
	if n := len(sess.Touchpoints); n > limit {
		sess.Touchpoints = append([]Touchpoint(nil), sess.Touchpoints[n-limit:]...)
	}
}

// Create makes a session with the touchpoints of its first click and
// returns its ID once it is committed, so the visitor's next request finds
// it. It reads nothing first: the ID is new. New sessions of concurrent
// clicks are committed together as one batch record (see newBatchID), which
// spares each landing click most of a store write; a session's later
// clicks give it a record of its own.
func (s *Sessions) Create(tps []Touchpoint, gaClientID string) (string, error) {
	sess := &Session{CreatedAt: now(), GAClientID: gaClientID}
	s.merge(sess, tps)
	ns := &newSession{batchMember: batchMember{value: encodeSession(sess)}}
	s.groupOnce.Do(func() {
		s.group = store.NewGroup(s.commitBatch, func(ns *newSession) int { return ownChars + len(ns.value) }, 0)
	})
	if err := s.group.Do(ns); err != nil {
		return "", err
	}
	return ns.id, nil
}

// A session made by Create has an ID of 40 characters of [A-Za-z0-9_-]:
// the ID of the batch it was committed in (18 characters: the time,
// Unix milliseconds in 7 sortableDigits, then 64 random bits), then 128
// random bits of its own (22 characters). Batch IDs begin with the time so
// that new batches sort after the ones before them: the store appends each
// to its sorted memtable, where the path is warm in the cache, instead of
// inserting it at a random place, and the tables it flushes cover a span of
// time rather than overlapping every older table. A session's secret is
// its own random part; the other sessions of its batch share only the
// batch ID.
const (
	stampLen         = 7
	batchRandomBytes = 8
	batchIDLen       = stampLen + 11
	ownRandomBytes   = 16
	ownChars         = 22
	idLen            = batchIDLen + ownChars
)

// sortableDigits are the 64 characters of base64url in ASCII order, so
// that a number written with them sorts as the number does.
const sortableDigits = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// newBatchID returns the ID of a batch committed at t, with
// batchRandomBytes of random.
func newBatchID(t time.Time, random []byte) string {
	var b [batchIDLen]byte
	ms := uint64(max(t.UnixMilli(), 0))
	for i := stampLen - 1; i >= 0; i-- {
		b[i] = sortableDigits[ms&63]
		ms >>= 6
	}
	base64.RawURLEncoding.Encode(b[stampLen:], random[:batchRandomBytes])
	return string(b[:])
}

// newSession is a session waiting in a Group for its batch.
type newSession struct {
	batchMember
	id string // set once committed
}

// batchFormat is the first byte of a batch record: the time it expires
// (Unix nanoseconds), then per session its own random part and its
// encodeSession form.
const batchFormat = 'B'

type batchMember struct {
	own   string // the session's own random part of its ID
	value []byte // encodeSession
}

// commitBatch writes new sessions as one record under a new batch ID. One
// read of the system's random source serves the batch ID and the own part
// of every session's ID.
func (s *Sessions) commitBatch(sessions []*newSession) []error {
	t := now()
	random := make([]byte, batchRandomBytes+ownRandomBytes*len(sessions))
	_, _ = rand.Read(random) // crypto/rand.Read never fails on supported platforms
	id := newBatchID(t, random)
	members := make([]batchMember, len(sessions))
	for i, ns := range sessions {
		ns.own = base64.RawURLEncoding.EncodeToString(random[batchRandomBytes+i*ownRandomBytes:][:ownRandomBytes])
		members[i] = ns.batchMember
	}
	value := encodeBatch(t.Add(s.TTL), members)
	err := s.Store.Update(func(txn store.Txn) error {
		return txn.Set(store.Key(store.PrefixSessionBatch, id), value, s.TTL)
	})
	errs := make([]error, len(sessions))
	for i, ns := range sessions {
		errs[i] = err
		ns.id = id + ns.own
	}
	return errs
}

func encodeBatch(expires time.Time, members []batchMember) []byte {
	size := 16
	for _, m := range members {
		size += len(m.own) + len(m.value) + 4
	}
	w := codec.NewWriter(batchFormat, size)
	w.Int(expires.UnixNano())
	w.Uint(uint64(len(members)))
	for _, m := range members {
		w.String(m.own)
		w.Bytes(m.value)
	}
	return w.Data()
}

func decodeBatch(v []byte) (time.Time, []batchMember, error) {
	r := codec.NewReader(v, batchFormat)
	expires := time.Unix(0, r.Int())
	members := make([]batchMember, r.Count(2))
	for i := range members {
		members[i] = batchMember{own: r.String(), value: r.Bytes()}
	}
	if err := r.Done(); err != nil {
		return time.Time{}, nil, fmt.Errorf("decoding session batch: %w", err)
	}
	return expires, members, nil
}

// lookup reads a session: its own record, or, for one made by Create that
// has had no click since, its entry in its batch.
func lookup(txn store.Txn, key []byte, id string) (*Session, error) {
	sess, err := getSession(txn, key)
	if !errors.Is(err, store.ErrNotFound) || len(id) != idLen {
		return sess, err
	}
	v, err := txn.Get(store.Key(store.PrefixSessionBatch, id[:batchIDLen]))
	if err != nil {
		return nil, err
	}
	_, members, err := decodeBatch(v)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.own == id[batchIDLen:] {
			return decodeStored(id, m.value)
		}
	}
	return nil, store.ErrNotFound
}

// Get returns a session, or store.ErrNotFound.
func (s *Sessions) Get(id string) (*Session, error) {
	key := store.Key(store.PrefixSession, id)
	sess, err := store.Read(s.Store, func(txn store.Txn) (*Session, error) { return lookup(txn, key, id) })
	if errors.Is(err, store.ErrNotFound) {
		return s.earlier(key)
	}
	return sess, err
}

// earlier reads a session from the Earlier store, or store.ErrNotFound.
func (s *Sessions) earlier(key []byte) (*Session, error) {
	if s.Earlier == nil {
		return nil, store.ErrNotFound
	}
	return store.Read(s.Earlier, func(txn store.Txn) (*Session, error) { return getSession(txn, key) })
}

// Erase deletes a session and its touchpoints (a visitor's erasure
// request), from the Earlier store too.
func (s *Sessions) Erase(id string) (bool, error) {
	key := store.Key(store.PrefixSession, id)
	found, err := erase(s.Store, key)
	if err == nil && len(id) == idLen {
		var inBatch bool
		inBatch, err = s.eraseFromBatch(id)
		found = found || inBatch
	}
	if err != nil || s.Earlier == nil {
		return found, err
	}
	foundEarlier, err := erase(s.Earlier, key)
	return found || foundEarlier, err
}

// eraseFromBatch rewrites a session's batch without it (or deletes the
// batch when it was the last), keeping the batch's expiry.
func (s *Sessions) eraseFromBatch(id string) (bool, error) {
	key := store.Key(store.PrefixSessionBatch, id[:batchIDLen])
	found := false
	err := s.Store.Update(func(txn store.Txn) error {
		found = false
		v, err := txn.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		expires, members, err := decodeBatch(v)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(members, func(m batchMember) bool { return m.own == id[batchIDLen:] })
		if i < 0 {
			return nil
		}
		found = true
		members = slices.Delete(members, i, i+1)
		ttl := expires.Sub(now())
		if len(members) == 0 || ttl <= 0 {
			return txn.Delete(key)
		}
		return txn.Set(key, encodeBatch(expires, members), ttl)
	})
	return found, err
}

func erase(st store.Store, key []byte) (bool, error) {
	found := false
	err := st.Update(func(txn store.Txn) error {
		_, err := txn.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return txn.Delete(key)
	})
	return found, err
}

// sessionFormat is the first byte of a session in its binary form (see
// encodeSession). Sessions written as JSON by earlier versions start with
// '{' and are still read.
const sessionFormat = 'S'

// encodeSession is the stored form of a session, written on every captured
// click: the creation time, the GA client ID, then per touchpoint network,
// parameter, click ID, capture and expiry times, landing URL, referrer,
// client IP, user agent and the sub IDs sorted by name. Times are Unix
// nanoseconds; the ID is left to the key.
func encodeSession(s *Session) []byte {
	size := 32
	for _, t := range s.Touchpoints {
		size += 64 + len(t.ClickID) + len(t.LandingURL) + len(t.Referrer) + len(t.UserAgent)
	}
	w := codec.NewWriter(sessionFormat, size)
	var keyBuf [16]string // SubParams fit; more spill to the heap
	w.Int(s.CreatedAt.UnixNano())
	w.String(s.GAClientID)
	w.Uint(uint64(len(s.Touchpoints)))
	for _, t := range s.Touchpoints {
		w.String(t.Network)
		w.String(t.Param)
		w.String(t.ClickID)
		w.Int(t.CapturedAt.UnixNano())
		w.Int(t.ExpiresAt.UnixNano())
		w.String(t.LandingURL)
		w.String(t.Referrer)
		w.String(t.ClientIP)
		w.String(t.UserAgent)
		w.Uint(uint64(len(t.Subs)))
		keys := keyBuf[:0]
		for k := range t.Subs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			w.String(k)
			w.String(t.Subs[k])
		}
	}
	return w.Data()
}

// decodeSession reads a stored session in either form.
func decodeSession(id string, v []byte) (*Session, error) {
	if len(v) > 0 && v[0] == '{' {
		return decodeSessionJSON(id, v)
	}
	r := codec.NewReader(v, sessionFormat)
	s := &Session{ID: id, CreatedAt: time.Unix(0, r.Int()), GAClientID: r.String()}
	// A touchpoint takes at least 10 bytes: seven empty strings, two times
	// and a count.
	if n := r.Count(10); n > 0 {
		s.Touchpoints = make([]Touchpoint, n)
	}
	for i := range s.Touchpoints {
		t := &s.Touchpoints[i]
		t.Network, t.Param, t.ClickID = r.String(), r.String(), r.String()
		t.CapturedAt, t.ExpiresAt = time.Unix(0, r.Int()), time.Unix(0, r.Int())
		t.LandingURL, t.Referrer, t.ClientIP, t.UserAgent = r.String(), r.String(), r.String(), r.String()
		if n := r.Count(2); n > 0 {
			t.Subs = make(map[string]string, n)
			for range n {
				k := r.String()
				t.Subs[k] = r.String()
			}
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	return s, nil
}

// sessionJSON is the JSON form sessions were stored in before the binary
// form; it is only read.
type sessionJSON struct {
	Created int64 `json:"c"`
	Touch   []struct {
		Network  string            `json:"n"`
		Param    string            `json:"p"`
		ClickID  string            `json:"k"`
		At       int64             `json:"a"`
		Expires  int64             `json:"x"`
		Landing  string            `json:"l,omitempty"`
		Referrer string            `json:"r,omitempty"`
		IP       string            `json:"i,omitempty"`
		UA       string            `json:"u,omitempty"`
		Subs     map[string]string `json:"s,omitempty"`
	} `json:"t"`
	GA string `json:"g,omitempty"`
}

func decodeSessionJSON(id string, v []byte) (*Session, error) {
	var rec sessionJSON
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	s := &Session{ID: id, CreatedAt: time.Unix(0, rec.Created), GAClientID: rec.GA}
	s.Touchpoints = make([]Touchpoint, len(rec.Touch))
	for i, t := range rec.Touch {
		s.Touchpoints[i] = Touchpoint{Network: t.Network, Param: t.Param, ClickID: t.ClickID,
			CapturedAt: time.Unix(0, t.At), ExpiresAt: time.Unix(0, t.Expires),
			LandingURL: t.Landing, Referrer: t.Referrer, ClientIP: t.IP, UserAgent: t.UA, Subs: t.Subs}
	}
	return s, nil
}

func getSession(txn store.Txn, key []byte) (*Session, error) {
	v, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return decodeStored(string(key[len(store.PrefixSession):]), v)
}

// decodeStored decodes a stored session with its touchpoints oldest first.
func decodeStored(id string, v []byte) (*Session, error) {
	s, err := decodeSession(id, v)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(s.Touchpoints, func(i, j int) bool {
		return s.Touchpoints[i].CapturedAt.Before(s.Touchpoints[j].CapturedAt)
	})
	return s, nil
}

func putSession(txn store.Txn, key []byte, s *Session, ttl time.Duration) error {
	return txn.Set(key, encodeSession(s), ttl)
}

// TruncateIP zeroes the host part of an address for privacy: IPv4 to /24,
// IPv6 to /48. Anything unparseable is dropped.
func TruncateIP(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ""
	}
	if v4 := p.To4(); v4 != nil {
		return v4.Mask(net.CIDRMask(24, 32)).String()
	}
	return p.Mask(net.CIDRMask(48, 128)).String()
}
