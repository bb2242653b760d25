package capture

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Network is a configured click source.
type Network struct {
	// Name identifies the network in config, store and postbacks.
	Name string
	// Params are its click-ID query parameters.
	Params []string
	// Cookies are the first-party cookies its own script keeps click IDs
	// in.
	Cookies []ClickCookie
	// Window is its attribution window: how long a click can earn a conversion.
	Window time.Duration
	// Role is "affiliate" or "platform".
	Role string
}

// Hit is a click ID found on a landing URL.
type Hit struct {
	Network int // index into the Recognizer's networks
	Param   string
	ClickID string
}

// Recognizer finds configured click-ID parameters in query strings. It is
// built once per config and safe for concurrent use.
type Recognizer struct {
	networks []Network
	byParam  map[string]int
	maxLen   int
	// lengths (bit n: some parameter is n bytes long, n < 64; bit 0: one is
	// 64 or longer) and first (its first byte) let Has reject most query
	// keys without hashing them: Has runs on every request, and most
	// requests carry no click ID.
	lengths uint64
	first   [256]bool
	// cookies are the networks' click cookies.
	cookies []cookieSource
}

// DefaultMaxClickIDLength caps click IDs; the longest documented IDs (fbclid,
// Everflow, impact.com) are well under it.
const DefaultMaxClickIDLength = 255

// NewRecognizer indexes the networks' parameters. Two networks that claim the
// same parameter are a configuration error, because a click could not be
// told apart.
func NewRecognizer(networks []Network, maxLen int) (*Recognizer, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxClickIDLength
	}
	r := &Recognizer{networks: networks, byParam: make(map[string]int), maxLen: maxLen}
	for i, n := range networks {
		for _, p := range n.Params {
			if p == "" {
				return nil, fmt.Errorf("network %s: empty click parameter name", n.Name)
			}
			if j, dup := r.byParam[p]; dup && j != i {
				return nil, fmt.Errorf("click parameter %q is claimed by networks %s and %s; give one of them other click_param names", p, networks[j].Name, n.Name)
			}
			r.byParam[p] = i
			r.lengths |= lengthBit(len(p))
			r.first[p[0]] = true
		}
	}
	if err := r.addCookies(); err != nil {
		return nil, err
	}
	return r, nil
}

// Networks returns the recognised networks.
func (r *Recognizer) Networks() []Network { return r.networks }

// Has reports whether rawQuery mentions any click-ID parameter. It does not
// allocate, so requests without click IDs cost next to nothing: a key is
// only looked up when its length and first byte could be a parameter's, and
// only unescaped when the query has an escape at all.
func (r *Recognizer) Has(rawQuery string) bool {
	if rawQuery == "" || len(r.byParam) == 0 {
		return false
	}
	escaped := strings.IndexByte(rawQuery, '%') >= 0 || strings.IndexByte(rawQuery, '+') >= 0
	for q := rawQuery; ; {
		amp := strings.IndexByte(q, '&')
		key := q
		if amp >= 0 {
			key = q[:amp]
		}
		if eq := strings.IndexByte(key, '='); eq >= 0 {
			key = key[:eq]
		}
		if key != "" && r.lengths&lengthBit(len(key)) != 0 && r.first[key[0]] {
			if _, ok := r.byParam[key]; ok {
				return true
			}
		}
		if escaped && strings.ContainsAny(key, "%+") {
			if k, err := url.QueryUnescape(key); err == nil {
				if _, ok := r.byParam[k]; ok {
					return true
				}
			}
		}
		if amp < 0 {
			return false
		}
		q = q[amp+1:]
	}
}

// lengthBit is the bit of Recognizer.lengths for a key of n bytes.
func lengthBit(n int) uint64 {
	if n >= 64 {
		return 1
	}
	return 1 << n
}

// Find returns the valid click IDs in the query, one per network (the last
// occurrence wins), and the invalid ones as errors. A bad click ID never
// stops the request: it is just not captured.
func (r *Recognizer) Find(query url.Values) ([]Hit, []error) {
	var cands []Hit
	for key, vals := range query {
		if i, ok := r.byParam[key]; ok && len(vals) > 0 {
			cands = append(cands, Hit{Network: i, Param: key, ClickID: vals[len(vals)-1]})
		}
	}
	return r.hits(cands)
}

// Landing is what a landing URL's query holds for capture.
type Landing struct {
	// Hits are the valid click IDs, one per network.
	Hits []Hit
	// Subs holds the first value of each sub parameter (record.SubParams) that is
	// a valid ID by the same rule as click IDs.
	Subs map[string]string
	// Errs are the rejected click IDs.
	Errs []error
}

// Read scans a raw query once for click IDs (as Find does on the parsed
// query) and sub parameters. It unescapes only what it keeps, and skips
// pairs url.ParseQuery would reject (a ';', a bad escape), so it
// reads a query the way Find reads its parsed form, without building the
// map of every parameter on each landing request.
func (r *Recognizer) Read(rawQuery string) Landing {
	var l Landing
	var buf [4]Hit
	cands := buf[:0]
	var subsSeen uint32
	for q := rawQuery; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, ok := unescape(key)
		if !ok {
			continue
		}
		net, isClick := r.byParam[key]
		sub, isSub := subParamIndex[key]
		isSub = isSub && subsSeen&(1<<sub) == 0
		if !isClick && !isSub {
			continue
		}
		v, ok := unescape(value)
		if !ok {
			continue
		}
		if isClick {
			// A space is never part of a click ID: a '+' is one the network
			// sent unescaped (standard base64), kept as sent.
			cv, _ := unescapeClickID(value)
			cands = addCandidate(cands, Hit{Network: net, Param: key, ClickID: cv})
		}
		if isSub {
			subsSeen |= 1 << sub
			if v != "" && ValidClickID(v, r.maxLen) == nil {
				if l.Subs == nil {
					l.Subs = make(map[string]string, 2)
				}
				l.Subs[key] = v
			}
		}
	}
	l.Hits, l.Errs = r.hits(cands)
	return l
}

// addCandidate records a parameter's value; a later value of the same
// parameter replaces the earlier one.
func addCandidate(cands []Hit, h Hit) []Hit {
	for i := range cands {
		if cands[i].Param == h.Param {
			cands[i] = h
			return cands
		}
	}
	return append(cands, h)
}

// unescape decodes a query component, without allocating when it holds no
// escape.
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// unescapeClickID decodes a click ID's %-escapes but keeps '+' as '+'.
func unescapeClickID(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	u, err := url.PathUnescape(s)
	return u, err == nil
}

// hits validates the candidates, one value per parameter, and keeps one per
// network: when a network's click ID comes under two of its parameters, the
// one it lists first.
func (r *Recognizer) hits(cands []Hit) ([]Hit, []error) {
	var hits []Hit
	var errs []error
	for _, h := range cands {
		if err := ValidClickID(h.ClickID, r.maxLen); err != nil {
			errs = append(errs, fmt.Errorf("network %s parameter %s: %w", r.networks[h.Network].Name, h.Param, err))
			continue
		}
		at := slices.IndexFunc(hits, func(o Hit) bool { return o.Network == h.Network })
		if at < 0 {
			hits = append(hits, h)
		} else if paramRank(r.networks[h.Network], h.Param) < paramRank(r.networks[h.Network], hits[at].Param) {
			hits[at] = h
		}
	}
	return hits, errs
}

func paramRank(n Network, p string) int {
	for i, q := range n.Params {
		if q == p {
			return i
		}
	}
	return len(n.Params)
}

// ErrBadClickID is wrapped by click-ID validation errors.
var ErrBadClickID = errors.New("invalid click ID")

// ValidClickID accepts 1..maxLen bytes of printable ASCII without spaces.
// Click IDs are kept verbatim (case matters to Meta and impact.com), so
// nothing is normalised; anything else is rejected.
func ValidClickID(v string, maxLen int) error {
	if v == "" {
		return fmt.Errorf("%w: empty", ErrBadClickID)
	}
	if len(v) > maxLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrBadClickID, len(v), maxLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return fmt.Errorf("%w: byte 0x%02x at %d is not printable ASCII", ErrBadClickID, v[i], i)
		}
	}
	return nil
}
