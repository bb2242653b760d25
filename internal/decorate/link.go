package decorate

import "bytes"

// plan decides whether the raw attribute value val is a link to a target
// that still lacks the target's parameter. If so it returns where in val
// the parameter goes (before the fragment, or after the last character
// that is not a space or control), the separator to put before it, and the
// target; otherwise t is nil.
func (w *Writer) plan(val []byte) (at int, sep string, t *Target) {
	if !mayBeAbsolute(val) {
		return 0, "", nil
	}
	dec, hash, end := decodeValue(w.scratch[:0], val)
	w.scratch = dec[:0]
	// URL parsers trim spaces and controls from both ends of the whole
	// value: before a fragment they are part of the URL.
	u := trimControlsAndSpace(dec, hash < 0)
	if hasTabOrNewline(u) {
		// URL parsers drop tabs and newlines wherever they are.
		u = bytes.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, u)
	}
	t, rest := w.linkTarget(u)
	if t == nil {
		return 0, "", nil
	}
	// What precedes the parameter: the URL up to its fragment, spaces
	// included (they belong to the path or query there), or up to its
	// last character that is not a space.
	at, before := end, u
	if hash >= 0 {
		at, before = hash, dec
	}
	q := bytes.IndexByte(rest, '?')
	switch {
	case q < 0:
		return at, "?", t
	case hasParam(rest[q+1:], t.Param):
		return 0, "", nil
	case !endsWithSeparator(before):
		return at, "&amp;", t
	case isAlnum(val[at-1]):
		// The '?' or '&' is a character reference without its semicolon
		// ("&amp", "&#38"): a letter or digit after it would change it.
		return at, ";", t
	}
	return at, "", t
}

// mayBeAbsolute reports whether a raw attribute value can be an absolute
// or protocol-relative URL: most links on a page are relative ("/cart")
// and need no closer look. After leading spaces and controls it must
// start with a scheme's letter, a character reference, or two slashes
// (or backslashes; a tab or newline between them is dropped too).
func mayBeAbsolute(val []byte) bool {
	val = trimControlsAndSpace(val, false)
	if len(val) < 2 {
		return false
	}
	switch val[0] {
	case 'h', 'H', '&':
		return true
	case '/', '\\':
		return isSlash(val[1]) || val[1] == '&' || val[1] == '\t' || val[1] == '\n' || val[1] == '\r'
	}
	return false
}

func hasTabOrNewline(u []byte) bool {
	for _, c := range u {
		if c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// endsWithSeparator reports whether a URL ends with '?' or '&', so that a
// parameter can follow at once.
func endsWithSeparator(u []byte) bool {
	return len(u) > 0 && (u[len(u)-1] == '?' || u[len(u)-1] == '&')
}

func isAlnum(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' }

// linkTarget returns the target whose host the URL u names, and what
// follows the host and port in u (its path and query). u must be an http or
// https URL or a protocol-relative one; backslashes count as slashes there,
// as browsers read them.
func (w *Writer) linkTarget(u []byte) (*Target, []byte) {
	rest := u
	switch {
	case hasPrefixFold(u, "https:"):
		rest = u[len("https:"):]
	case hasPrefixFold(u, "http:"):
		rest = u[len("http:"):]
	}
	if len(rest) < 3 || !isSlash(rest[0]) || !isSlash(rest[1]) || isSlash(rest[2]) {
		return nil, nil
	}
	authority := rest[2:]
	end := len(authority)
	for k, c := range authority {
		if c == '/' || c == '\\' || c == '?' {
			end = k
			break
		}
	}
	authority, rest = authority[:end], authority[end:]
	host := authority
	if k := bytes.LastIndexByte(host, '@'); k >= 0 {
		host = host[k+1:] // user information is not the host
	}
	if k := bytes.LastIndexByte(host, ':'); k >= 0 {
		for _, c := range host[k+1:] {
			if c < '0' || c > '9' {
				return nil, nil
			}
		}
		host = host[:k]
	}
	for i := range w.targets {
		if equalFold(host, w.targets[i].Host) {
			return &w.targets[i], rest
		}
	}
	return nil, nil
}

// hasParam reports whether a query (without its '?') has a parameter
// called name, comparing names after percent-decoding them.
func hasParam(query []byte, name string) bool {
	for len(query) > 0 {
		pair := query
		if k := bytes.IndexByte(query, '&'); k >= 0 {
			pair, query = query[:k], query[k+1:]
		} else {
			query = nil
		}
		if k := bytes.IndexByte(pair, '='); k >= 0 {
			pair = pair[:k]
		}
		if unescapedEqual(pair, name) {
			return true
		}
	}
	return false
}

// unescapedEqual reports whether the query component s decodes to name:
// "%XX" is a byte, '+' a space, and a '%' without two hex digits itself.
func unescapedEqual(s []byte, name string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

// appendQueryEscaped appends s escaped for a URL query component, as
// url.QueryEscape does.
func appendQueryEscaped(dst []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

// trimControlsAndSpace removes C0 controls and spaces from the start of u
// and, if atEnd, from its end, as the URL parser does.
func trimControlsAndSpace(u []byte, atEnd bool) []byte {
	for len(u) > 0 && u[0] <= ' ' {
		u = u[1:]
	}
	for atEnd && len(u) > 0 && u[len(u)-1] <= ' ' {
		u = u[:len(u)-1]
	}
	return u
}

func hasPrefixFold(s []byte, prefix string) bool {
	return len(s) >= len(prefix) && equalFold(s[:len(prefix)], prefix)
}

// equalFold reports whether b and s are equal, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func isSlash(c byte) bool { return c == '/' || c == '\\' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
