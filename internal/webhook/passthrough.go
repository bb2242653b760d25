package webhook

import "strings"

// PassThrough says how a visitor's session reference rides a buy link to a
// marketplace and comes back in its notification, so that the order finds
// the visitor's clicks.
type PassThrough struct {
	// Param is the query parameter the link decorator adds to the buy link.
	Param string
	// Encode rewrites a session reference into a value the platform keeps
	// intact; nil means the reference is sent as it is.
	Encode func(ref string) string
}

// PassThroughFor returns the pass-through of buy links to host on the named
// marketplace (clickbank, jvzoo, warriorplus); ok is false for any other
// provider. The value comes back where the provider's Parse looks for it:
//
//   - clickbank, host hop.clickbank.net or <affiliate>.<vendor>.hop.clickbank.net
//     (an affiliate's HopLink): "tid", with the reference encoded by
//     EncodeTID, because ClickBank keeps only lower-case letters, digits and
//     underscores there (up to 100). It returns in the INS trackingCodes.
//   - clickbank, any other host (a seller's pay link, <vendor>.pay.clickbank.net):
//     "pb_session" as it is. It returns in the INS vendorVariables.
//   - jvzoo (a seller's buy link, www.jvzoo.com/b/…): "pb_session" as it
//     is. It returns in cvendthru (JVZIPN v1) or other_params (v2).
//   - warriorplus (a seller's buy button, warriorplus.com/o2/buy/…): "s",
//     the buy button's sub-ID, as it is. It returns in WP_SID.
//
// The "pb_session" name is DefaultSessionField; an endpoint configured with
// another session field must be decorated with that name instead.
func PassThroughFor(provider, host string) (PassThrough, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	switch strings.ToLower(provider) {
	case "clickbank":
		if host == "hop.clickbank.net" || strings.HasSuffix(host, ".hop.clickbank.net") {
			return PassThrough{Param: "tid", Encode: EncodeTID}, true
		}
		return PassThrough{Param: DefaultSessionField}, true
	case "jvzoo":
		return PassThrough{Param: DefaultSessionField}, true
	case "warriorplus":
		return PassThrough{Param: "s"}, true
	}
	return PassThrough{}, false
}

// A session reference is base64url (6 bits a character); a ClickBank
// tracking ID allows only lower-case letters, digits and underscores. The
// reference is therefore re-encoded in base 32 (5 bits a character, a-z
// and 2-7) behind the prefix "pb": a 62-character reference becomes 77
// characters, inside ClickBank's 100. Decoding ignores case, in case a
// platform folds it.
const (
	tidPrefix    = "pb"
	tidAlphabet  = "abcdefghijklmnopqrstuvwxyz234567"
	refAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	maxTIDLength = 100
)

// EncodeTID writes a session reference as a tracking ID that ClickBank
// keeps intact ("pb" and lower-case base 32). It returns "" for a value
// that is not base64url or would not fit in 100 characters.
func EncodeTID(ref string) string {
	n := len(tidPrefix) + (len(ref)*6+4)/5
	if ref == "" || n > maxTIDLength {
		return ""
	}
	out := make([]byte, 0, n)
	out = append(out, tidPrefix...)
	var acc uint32
	bits := 0
	for i := 0; i < len(ref); i++ {
		v := base64URLValue(ref[i])
		if v < 0 {
			return ""
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		for bits >= 5 {
			bits -= 5
			out = append(out, tidAlphabet[acc>>bits&31])
		}
		acc &= 1<<bits - 1
	}
	if bits > 0 {
		out = append(out, tidAlphabet[acc<<(5-bits)&31])
	}
	return string(out)
}

// decodeTID reverses EncodeTID. It accepts only a value that decodes to the
// shape of a session reference with zero padding bits, so an ordinary
// tracking ID is never mistaken for one.
func decodeTID(tid string) (string, bool) {
	if len(tid) <= len(tidPrefix) || len(tid) > maxTIDLength || !strings.EqualFold(tid[:len(tidPrefix)], tidPrefix) {
		return "", false
	}
	body := tid[len(tidPrefix):]
	n := len(body) * 5 / 6
	if n != 44 && n != 62 {
		return "", false
	}
	out := make([]byte, 0, n)
	var acc uint32
	bits := 0
	for i := 0; i < len(body); i++ {
		v := base32Value(body[i])
		if v < 0 {
			return "", false
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 6 {
			bits -= 6
			out = append(out, refAlphabet[acc>>bits&63])
		}
		acc &= 1<<bits - 1
	}
	if acc != 0 || len(out) != n {
		return "", false
	}
	return string(out), true
}

// base64URLValue returns the 6-bit value of a base64url character, or -1.
func base64URLValue(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

// base32Value returns the 5-bit value of a tidAlphabet character in either
// case, or -1.
func base32Value(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= '2' && c <= '7':
		return int(c-'2') + 26
	}
	return -1
}
