package intake

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// token is a configured token, ready to compare.
type token struct {
	in     Place
	param  string // InParam, InParamOrHeader
	header string // InHeader, InParamOrHeader
	digest [sha256.Size]byte
}

func newToken(t Token) (token, error) {
	s := t.Secret
	switch {
	case s == "":
		return token{}, errors.New("empty")
	case strings.TrimSpace(s) != s:
		return token{}, errors.New("has leading or trailing white space")
	case len(s) < MinTokenLength:
		return token{}, fmt.Errorf("shorter than %d characters: use a long random value (openssl rand -hex 32)", MinTokenLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return token{}, errors.New("not printable ASCII without spaces")
		}
	}
	tk := token{in: t.In, digest: sha256.Sum256([]byte(s))}
	switch t.In {
	case InParamOrHeader:
		if t.Name != "" {
			return token{}, errors.New("a name needs a place (query, header)")
		}
		tk.param, tk.header = DefaultTokenParam, DefaultTokenHeader
	case InParam:
		if t.Name == "" || strings.ContainsAny(t.Name, "&=#? \t") {
			return token{}, fmt.Errorf("query parameter name %q", t.Name)
		}
		tk.param = t.Name
	case InHeader:
		if t.Name == "" || strings.ContainsAny(t.Name, ": \t\r\n") {
			return token{}, fmt.Errorf("header name %q", t.Name)
		}
		tk.header = http.CanonicalHeaderKey(t.Name)
	case InPath:
		if t.Name != "" {
			return token{}, errors.New("a path token has no name")
		}
		if strings.ContainsAny(s, "/?#%") {
			return token{}, errors.New("a path token cannot hold / ? # or %")
		}
	default:
		return token{}, fmt.Errorf("unknown place %d", t.In)
	}
	return tk, nil
}

// Allowed checks the client's address against the allowlist, if there is
// one. clientIP is the address as the server determined it, trusted
// proxies taken into account. Its error wraps ErrForbidden.
func (e *Endpoint) Allowed(clientIP string) error {
	if len(e.cfg.Allow) == 0 {
		return nil
	}
	addr, err := netip.ParseAddr(clientIP)
	if err != nil {
		return fmt.Errorf("%w: client address %q unreadable", ErrForbidden, clientIP)
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range e.cfg.Allow {
		if p.Contains(addr) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is outside the allowlist", ErrForbidden, addr)
}

// authenticate checks that the request carries one of the tokens, in
// constant time over the tokens' digests (so neither a token's content
// nor its length leaks through timing). An endpoint without tokens takes
// any request.
func (e *Endpoint) authenticate(r *Request, p params) error {
	if len(e.tokens) == 0 {
		return nil
	}
	matched := 0
	for i := range e.tokens {
		t := &e.tokens[i]
		for _, v := range t.presented(r, p) {
			sum := sha256.Sum256([]byte(v))
			matched |= subtle.ConstantTimeCompare(sum[:], t.digest[:])
		}
	}
	if matched != 1 {
		return fmt.Errorf("%w: no configured token was presented", ErrUnauthorized)
	}
	return nil
}

// presented returns what the request offers in the token's place: at most
// one value per place (a parameter or header sent twice offers nothing).
func (t *token) presented(r *Request, p params) []string {
	var out []string
	if t.in == InPath {
		if r.PathToken != "" {
			out = append(out, r.PathToken)
		}
		return out
	}
	if t.param != "" {
		if vs := p[t.param]; len(vs) == 1 {
			if v, err := vs[0].text(); err == nil && v != "" {
				out = append(out, v)
			}
		}
	}
	if t.header != "" {
		if vs := r.Header.Values(t.header); len(vs) == 1 && vs[0] != "" {
			out = append(out, vs[0])
		}
	}
	return out
}
