package capture

import (
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
	group     *store.GroupWriter
}

// DefaultMaxTouchpoints is the per-session touchpoint cap.
const DefaultMaxTouchpoints = 20

// Add records touchpoints in the session, creating the session if needed,
// in one small transaction. A repeat of the same click (a reloaded landing
// page) refreshes the existing touchpoint instead of adding one.
func (s *Sessions) Add(id string, tps []Touchpoint, gaClientID string) error {
	key := store.Key(store.PrefixSession, id)
	return s.Store.Update(func(txn store.Txn) error {
		sess, err := getSession(txn, key)
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

// Create records the touchpoints of a session that has just been made. Its
// ID holds 128 fresh random bits, so no record can exist yet: unlike Add it
// writes without reading first, which spares every landing click a store
// lookup that would only miss, and it shares its commit with the new
// sessions of concurrent clicks (store.GroupWriter). It returns once the
// session is committed, so the visitor's next request finds it.
func (s *Sessions) Create(id string, tps []Touchpoint, gaClientID string) error {
	sess := &Session{ID: id, CreatedAt: now(), GAClientID: gaClientID}
	s.merge(sess, tps)
	s.groupOnce.Do(func() { s.group = store.NewGroupWriter(s.Store, 0) })
	return s.group.Set(store.Key(store.PrefixSession, id), encodeSession(sess), s.TTL)
}

// Get returns a session, or store.ErrNotFound.
func (s *Sessions) Get(id string) (*Session, error) {
	key := store.Key(store.PrefixSession, id)
	var sess *Session
	err := s.Store.View(func(txn store.Txn) error {
		var err error
		sess, err = getSession(txn, key)
		return err
	})
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
	var sess *Session
	err := s.Earlier.View(func(txn store.Txn) error {
		var err error
		sess, err = getSession(txn, key)
		return err
	})
	return sess, err
}

// Erase deletes a session and its touchpoints (a visitor's erasure
// request), from the Earlier store too.
func (s *Sessions) Erase(id string) (bool, error) {
	key := store.Key(store.PrefixSession, id)
	found, err := erase(s.Store, key)
	if err != nil || s.Earlier == nil {
		return found, err
	}
	foundEarlier, err := erase(s.Earlier, key)
	return found || foundEarlier, err
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
	s, err := decodeSession(string(key[len(store.PrefixSession):]), v)
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
