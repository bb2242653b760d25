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

// A session cookie value is the session ID (16 random bytes) followed by a
// truncated HMAC-SHA256 of it (16 bytes), both base64url without padding:
// 44 characters of [A-Za-z0-9_-], so the value can ride through a hosted
// checkout as a Stripe client_reference_id and be verified when it returns.
const (
	idLen       = 22
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

// NewSigner returns a Signer for key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < minKeyBytes {
		return nil, errors.New("session signing key must be at least 32 bytes")
	}
	key = append([]byte(nil), key...)
	s := &Signer{}
	s.macs.New = func() any { return hmac.New(sha256.New, key) }
	return s, nil
}

// NewKey returns a random signing key.
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}

// New returns a fresh session ID and its signed cookie value.
func (s *Signer) New() (id, value string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id = base64.RawURLEncoding.EncodeToString(b[:])
	return id, id + s.mac(id)
}

// Verify returns the session ID of a signed value, or ok=false for anything
// forged, truncated or signed with another key.
func (s *Signer) Verify(value string) (id string, ok bool) {
	if len(value) != cookieLen {
		return "", false
	}
	id, mac := value[:idLen], value[idLen:]
	if subtle.ConstantTimeCompare([]byte(mac), []byte(s.mac(id))) != 1 {
		return "", false
	}
	return id, true
}

func (s *Signer) mac(id string) string {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(macDomain))
	m.Write([]byte(id))
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
	s.macs.Put(m)
	return out
}

// CookieValue returns the value of the named cookie from the request headers
// without parsing every cookie, and without allocating. It searches for the
// name itself rather than splitting the header at every ';', because it
// runs on every request that carries cookies, and most carry only others.
func CookieValue(h http.Header, name string) string {
	if name == "" {
		return ""
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
				return strings.Trim(strings.TrimRight(v, asciiSpace), `"`)
			}
			off = i + 1
		}
	}
	return ""
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
