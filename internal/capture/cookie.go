package capture

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
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
type Signer struct{ key []byte }

// NewSigner returns a Signer for key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < minKeyBytes {
		return nil, errors.New("session signing key must be at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
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
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(macDomain))
	m.Write([]byte(id))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// CookieValue returns the value of the named cookie from the request headers
// without parsing every cookie, and without allocating.
func CookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}
