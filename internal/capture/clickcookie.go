package capture

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// ClickCookie is a first-party cookie in which a network's own script
// keeps the click ID (or referral ID) it tracks a visitor by. The script
// sets it in the browser after the landing page loads, so the module reads
// it on the visitor's later requests.
type ClickCookie struct {
	// Name is the cookie's name.
	Name string
	// Field, when set, is the path (gjson syntax, such as "id") of the
	// click ID in a cookie that holds a JSON object, percent-encoded or
	// not. Empty: the cookie's value is the click ID.
	Field string
}

// maxClickCookie caps a click cookie's value read: a JSON cookie is parsed
// only up to this size.
const maxClickCookie = 4096

// cookieSource is a click cookie of a network.
type cookieSource struct {
	ClickCookie
	network int
}

// addCookies indexes the networks' click cookies. Two networks that claim
// one cookie are a configuration error, as for query parameters.
func (r *Recognizer) addCookies() error {
	owner := map[string]int{}
	for i, n := range r.networks {
		for _, c := range n.Cookies {
			if c.Name == "" || (&http.Cookie{Name: c.Name, Value: "v"}).Valid() != nil {
				return fmt.Errorf("network %s: click cookie name %q is not a valid cookie name", n.Name, c.Name)
			}
			if j, dup := owner[c.Name]; dup {
				return fmt.Errorf("click cookie %q is claimed by networks %s and %s", c.Name, r.networks[j].Name, n.Name)
			}
			owner[c.Name] = i
			r.cookies = append(r.cookies, cookieSource{ClickCookie: c, network: i})
		}
	}
	return nil
}

// HasCookies reports whether the recognizer reads any click cookie.
func (r *Recognizer) HasCookies() bool { return len(r.cookies) > 0 }

// HasCookie reports whether the request carries a click cookie with a
// value. Like Has, it does not allocate: it runs on every request with
// cookies.
func (r *Recognizer) HasCookie(h http.Header) bool {
	for i := range r.cookies {
		found := false
		EachCookie(h, r.cookies[i].Name, func(v string) bool {
			found = v != ""
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// ReadCookies returns the valid click IDs of the request's click cookies,
// one per network, each with the cookie's name as its parameter, and the
// rejected ones as errors. The click IDs are validated and capped as query
// click IDs are.
func (r *Recognizer) ReadCookies(h http.Header) Landing {
	var cands []Hit
	var errs []error
	for _, c := range r.cookies {
		raw := ""
		EachCookie(h, c.Name, func(v string) bool {
			raw = v
			return v == ""
		})
		if raw == "" {
			continue
		}
		id, err := c.clickID(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s cookie %s: %w", r.networks[c.network].Name, c.Name, err))
			continue
		}
		cands = append(cands, Hit{Network: c.network, Param: c.Name, ClickID: id})
	}
	hits, bad := r.hits(cands)
	return Landing{Hits: hits, Errs: append(errs, bad...)}
}

// ErrBadClickCookie is wrapped by errors reading a click cookie's value.
var ErrBadClickCookie = errors.New("unreadable click cookie")

// clickID reads the click ID from a cookie's value.
func (c *ClickCookie) clickID(raw string) (string, error) {
	if len(raw) > maxClickCookie {
		return "", fmt.Errorf("%w: %d bytes, longer than %d", ErrBadClickCookie, len(raw), maxClickCookie)
	}
	if c.Field == "" {
		v, ok := unescapeClickID(raw)
		if !ok {
			return "", fmt.Errorf("%w: bad percent-encoding", ErrBadClickCookie)
		}
		return v, nil
	}
	doc := raw
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		d, err := url.PathUnescape(raw)
		if err != nil {
			return "", fmt.Errorf("%w: bad percent-encoding", ErrBadClickCookie)
		}
		doc = d
	}
	if !gjson.Valid(doc) {
		return "", fmt.Errorf("%w: not JSON", ErrBadClickCookie)
	}
	v := gjson.Get(doc, c.Field)
	if v.Type != gjson.String {
		return "", fmt.Errorf("%w: no string at %q", ErrBadClickCookie, c.Field)
	}
	return v.Str, nil
}

// SeenClicks remembers which cookie clicks sessions already hold, so that
// a click cookie, which the browser sends with every request for as long
// as it lives (pages and assets alike), costs one storage read per
// visitor, not one per request. It is bounded: when full, the older half
// is forgotten, and a forgotten click is looked up in the storage again.
// It is safe for concurrent use.
type SeenClicks struct {
	mu       sync.Mutex
	seed     maphash.Seed
	cur, old map[uint64]struct{}
	// max is the entries kept per generation.
	max int
}

// DefaultSeenClicks is the entries SeenClicks keeps per generation
// (16 bytes or so each).
const DefaultSeenClicks = 1 << 15

// NewSeenClicks returns an empty memory of max entries per generation.
func NewSeenClicks(max int) *SeenClicks {
	if max <= 0 {
		max = DefaultSeenClicks
	}
	return &SeenClicks{seed: maphash.MakeSeed(), cur: map[uint64]struct{}{}, max: max}
}

func (s *SeenClicks) key(session, network, clickID string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(session)
	h.WriteByte(0)
	h.WriteString(network)
	h.WriteByte(0)
	h.WriteString(clickID)
	return h.Sum64()
}

// Has reports whether the session is known to hold the click.
func (s *SeenClicks) Has(session, network, clickID string) bool {
	k := s.key(session, network, clickID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[k]; ok {
		return true
	}
	_, ok := s.old[k]
	return ok
}

// Add records that the session holds the click.
func (s *SeenClicks) Add(session, network, clickID string) {
	k := s.key(session, network, clickID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cur) >= s.max {
		s.old, s.cur = s.cur, make(map[uint64]struct{}, s.max/2)
	}
	s.cur[k] = struct{}{}
}
