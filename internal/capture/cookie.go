package capture

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"net/http"
	"strings"
	"sync"
)

// A session cookie value is the session ID (see NewSessionID) followed by a
// truncated HMAC-SHA256 of it (16 bytes, base64url without padding, 22
// characters): 44 characters of [A-Za-z0-9_-], so it can ride through a
// hosted checkout as a Stripe client_reference_id and be verified when it
// returns.
const (
	macLen      = 22
	cookieLen   = idLen + macLen
	macDomain   = "caddy-postback session v1\x00"
	minKeyBytes = 32
)

// Signer makes and verifies session cookie values.
type Signer struct {
	// macs pools keyed HMACs: keying one hashes the key twice and
	// allocates, on every new visitor and every cookie checked.
	macs sync.Pool
}

// pooledMAC is a keyed HMAC with room for its input and sum, so that
// signing does not allocate: bytes handed to the hash.Hash interface would
// escape to the heap.
type pooledMAC struct {
	h   hash.Hash
	in  [len(macDomain) + idLen]byte // macDomain, then the ID
	sum [sha256.Size]byte
}

// NewSigner returns a Signer for key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < minKeyBytes {
		return nil, errors.New("session signing key must be at least 32 bytes")
	}
	key = append([]byte(nil), key...)
	s := &Signer{}
	s.macs.New = func() any {
		m := &pooledMAC{h: hmac.New(sha256.New, key)}
		copy(m.in[:], macDomain)
		return m
	}
	return s, nil
}

// NewKey returns a random signing key.
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}

// Sign returns the cookie value of a session ID made by NewSessionID.
func (s *Signer) Sign(id string) string {
	if len(id) != idLen {
		panic("capture: signing a session ID not made by NewSessionID")
	}
	var v [cookieLen]byte
	copy(v[:], id)
	s.mac(v[idLen:], id)
	return string(v[:])
}

// Verify returns the session ID of a signed value, or ok=false for anything
// forged, truncated or signed with another key.
func (s *Signer) Verify(value string) (id string, ok bool) {
	if len(value) != cookieLen {
		return "", false
	}
	id = value[:idLen]
	var want [macLen]byte
	s.mac(want[:], id)
	if subtle.ConstantTimeCompare(want[:], []byte(value[len(id):])) != 1 {
		return "", false
	}
	return id, true
}

// mac writes the base64url MAC of a session ID of idLen bytes to dst
// (macLen bytes).
func (s *Signer) mac(dst []byte, id string) {
	m := s.macs.Get().(*pooledMAC)
	n := copy(m.in[len(macDomain):], id)
	m.h.Reset()
	m.h.Write(m.in[:len(macDomain)+n])
	base64.RawURLEncoding.Encode(dst, m.h.Sum(m.sum[:0])[:16])
	s.macs.Put(m)
}

// CookieValue returns the value of the first cookie with the name from the
// request headers without parsing every cookie, and without allocating. It
// searches for the name itself rather than splitting the header at every
// ';', because it runs on every request that carries cookies, and most carry
// only others.
func CookieValue(h http.Header, name string) string {
	v := ""
	EachCookie(h, name, func(s string) bool {
		v = s
		return false
	})
	return v
}

// VerifiedSession returns the session ID and signed value of the first
// cookie with the name that verifies: a browser may send several cookies of
// one name (set for different paths or domains, or planted by a
// subdomain), and any valid one is the visitor's session.
func (s *Signer) VerifiedSession(h http.Header, name string) (id, value string, ok bool) {
	EachCookie(h, name, func(v string) bool {
		id, ok = s.Verify(v)
		if ok {
			value = v
		}
		return !ok
	})
	return id, value, ok
}

// EachCookie calls fn with the value of every cookie with the name, in
// order, until fn returns false.
func EachCookie(h http.Header, name string, fn func(value string) bool) {
	if name == "" {
		return
	}
	for _, line := range h["Cookie"] {
		for off := 0; off < len(line); {
			i := strings.Index(line[off:], name)
			if i < 0 {
				break
			}
			i += off
			end := i + len(name)
			if end < len(line) && line[end] == '=' && startsPair(line, i) {
				v := line[end+1:]
				if j := strings.IndexByte(v, ';'); j >= 0 {
					v = v[:j]
				}
				if !fn(strings.Trim(strings.TrimRight(v, asciiSpace), `"`)) {
					return
				}
			}
			off = i + 1
		}
	}
}

// asciiSpace is what browsers put around cookie pairs.
const asciiSpace = " \t\n\v\f\r"

// startsPair reports whether the cookie name found at line[i] begins a
// name=value pair (only spaces between it and the previous ';'), rather than
// sitting inside another cookie's name or value.
func startsPair(line string, i int) bool {
	for i--; i >= 0; i-- {
		switch line[i] {
		case ';':
			return true
		case ' ', '\t', '\n', '\v', '\f', '\r':
		default:
			return false
		}
	}
	return true
}
