package postback

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/suggest"
)

// ErrTemplate is wrapped by every template error.
var ErrTemplate = errors.New("bad postback template")

// UnknownTokenError is a template's unknown {token}, wrapped in the
// template's error: a typo such as {clickid} that must never reach a
// network. Its message suggests the nearest known token.
type UnknownTokenError struct {
	// Token is the name between the braces.
	Token string
}

// Error names the token, the nearest known one and every known token.
func (e *UnknownTokenError) Error() string {
	hint := ""
	if near, ok := suggest.Nearest(e.Token, append(append([]string{}, Tokens...), record.SubParams...)); ok {
		hint = " (did you mean `{" + near + "}`?)"
	}
	return fmt.Sprintf("unknown token {%s}%s; known: %s, sub1…sub10, utm_*, value.<name>", e.Token, hint, strings.Join(Tokens, ", "))
}

// component is where in a request a token lands, which decides its escaping.
type component int

const (
	inPath component = iota
	inQuery
	inForm
	inJSONString
	inJSONNumber
	inHeader
)

type part struct {
	lit   string
	token string
	where component
}

// Template is a parsed URL, body or header template: literal text with
// {token} holes, each escaped for the place it stands in.
type Template struct {
	raw   string
	parts []part
}

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// Uses reports whether the template has the token.
func (t *Template) Uses(token string) bool {
	for _, p := range t.parts {
		if p.token == token {
			return true
		}
	}
	return false
}

// ParseURL parses a postback URL template. Its scheme and host must be
// literal (a visitor-supplied value must never pick where a postback goes),
// tokens may stand in the path (escaped as a path segment) and in the query
// (escaped as a query component), never in the fragment, and every token
// must be known.
func ParseURL(raw string) (*Template, error) {
	u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrTemplate, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: scheme must be http or https", ErrTemplate, raw)
	}
	schemeEnd := strings.Index(raw, "://")
	if schemeEnd < 0 {
		return nil, fmt.Errorf("%w %q: want an absolute URL", ErrTemplate, raw)
	}
	rest := raw[schemeEnd+3:]
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	authority := rest[:hostEnd]
	if strings.ContainsAny(raw[:schemeEnd+3]+authority, "{}") {
		return nil, fmt.Errorf("%w %q: tokens may not stand in the scheme or host", ErrTemplate, raw)
	}
	if authority == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrTemplate, raw)
	}
	t := &Template{raw: raw}
	t.parts = append(t.parts, part{lit: raw[:schemeEnd+3] + authority})
	where := inPath
	inKey := false // in the query, between ? or & and the next =
	err = scan(rest[hostEnd:], false, func(lit string) error {
		// Track the component as literal text moves past ? and #.
		for i := 0; i < len(lit); i++ {
			switch lit[i] {
			case '?':
				if where == inPath {
					where, inKey = inQuery, true
				}
			case '&':
				if where == inQuery {
					inKey = true
				}
			case '=':
				if where == inQuery {
					inKey = false
				}
			case '#':
				where = -1
			}
		}
		t.parts = append(t.parts, part{lit: lit})
		return nil
	}, func(tok string) error {
		if where < 0 {
			return fmt.Errorf("token {%s} in the fragment", tok)
		}
		// A visitor-supplied parameter name would let a value pick which
		// parameter the network reads, so names stay literal.
		if where == inQuery && inKey {
			return fmt.Errorf("token {%s} in a query parameter name", tok)
		}
		t.parts = append(t.parts, part{token: tok, where: where})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrTemplate, raw, err)
	}
	return t, nil
}

// ParseForm parses an application/x-www-form-urlencoded body template.
func ParseForm(raw string) (*Template, error) { return parseFlat(raw, inForm) }

// ParseHeader parses a header value template; values with line breaks are
// refused when rendering.
func ParseHeader(raw string) (*Template, error) { return parseFlat(raw, inHeader) }

func parseFlat(raw string, where component) (*Template, error) {
	t := &Template{raw: raw}
	err := scan(raw, false, func(lit string) error {
		t.parts = append(t.parts, part{lit: lit})
		return nil
	}, func(tok string) error {
		t.parts = append(t.parts, part{token: tok, where: where})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrTemplate, raw, err)
	}
	return t, nil
}

// ParseJSON parses a JSON body template. A token inside a string literal is
// escaped as JSON string content; outside quotes only numeric tokens
// (amount, timestamp, …) may stand, rendered as a number or null. Object
// keys must be literal. The JSON's own braces are written as they are
// ({"cid":"{click_id}"}); "{{" and "}}" are literal braces inside strings.
// The template with every token replaced by a sample value must be valid
// JSON.
func ParseJSON(raw string) (*Template, error) {
	t := &Template{raw: raw}
	inString, escaped := false, false
	// nest holds '{' and '[' of the enclosing containers; expectKey is true
	// where the next string in an object is a key; inKey while inside one.
	var nest []byte
	expectKey, inKey := false, false
	err := scan(raw, true, func(lit string) error {
		for i := 0; i < len(lit); i++ {
			c := lit[i]
			switch {
			case escaped:
				escaped = false
			case inString && c == '\\':
				escaped = true
			case c == '"':
				if !inString {
					inKey = expectKey && len(nest) > 0 && nest[len(nest)-1] == '{'
				}
				inString = !inString
			case inString:
			case c == '{' || c == '[':
				nest = append(nest, c)
				expectKey = c == '{'
			case c == '}' || c == ']':
				if len(nest) > 0 {
					nest = nest[:len(nest)-1]
				}
				expectKey = false
			case c == ',':
				expectKey = len(nest) > 0 && nest[len(nest)-1] == '{'
			case c == ':':
				expectKey = false
			}
		}
		t.parts = append(t.parts, part{lit: lit})
		return nil
	}, func(tok string) error {
		if inString && inKey {
			// A value-made key could shadow or add a field the receiver reads.
			return fmt.Errorf("token {%s} in an object key", tok)
		}
		if inString {
			t.parts = append(t.parts, part{token: tok, where: inJSONString})
			return nil
		}
		if !numericTokens[tok] {
			return fmt.Errorf("token {%s} must stand inside a JSON string", tok)
		}
		t.parts = append(t.parts, part{token: tok, where: inJSONNumber})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrTemplate, raw, err)
	}
	sample := t.render(func(string) (string, bool) { return "1", true })
	if !json.Valid([]byte(sample)) {
		return nil, fmt.Errorf("%w %q: not valid JSON", ErrTemplate, raw)
	}
	return t, nil
}

// scan splits raw into literal text and {token}s. "{{" and "}}" stand for
// literal braces. An unknown token is an error, so a typo such as {clickid}
// is caught at load time and never reaches a network.
//
// In a JSON template (jsonMode) braces outside string literals are the
// JSON's own structure: there only "{name}" with name made of letters,
// digits and underscores is a token (so {"a":1} and nested "}}" read
// naturally), and every other brace is literal text. Inside strings the
// rules above hold.
func scan(raw string, jsonMode bool, lit func(string) error, token func(string) error) error {
	var b strings.Builder
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		s := b.String()
		b.Reset()
		return lit(s)
	}
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		structural := jsonMode && !inString
		if jsonMode {
			switch {
			case escaped:
				escaped = false
			case inString && c == '\\':
				escaped = true
			case c == '"':
				inString = !inString
			}
		}
		switch {
		case structural && c == '{' && identBrace(raw[i+1:]) < 0:
			b.WriteByte(c)
		case structural && c == '}':
			b.WriteByte(c)
		case c == '{' && i+1 < len(raw) && raw[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(raw) && raw[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(raw[i:], '}')
			if end < 0 {
				return fmt.Errorf("unclosed { at byte %d", i)
			}
			name := raw[i+1 : i+end]
			if !knownToken(name) {
				return &UnknownTokenError{Token: name}
			}
			if err := flush(); err != nil {
				return err
			}
			if err := token(name); err != nil {
				return err
			}
			i += end
		case c == '}':
			return fmt.Errorf("unmatched } at byte %d", i)
		default:
			b.WriteByte(c)
		}
	}
	return flush()
}

// identBrace returns the length of a leading "name}" in s, name being
// letters, digits and underscores, or -1.
func identBrace(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '}' && i > 0:
			return i
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		default:
			return -1
		}
	}
	return -1
}

// Render fills the template from a conversion.
func (t *Template) Render(c *record.Postback) (string, error) {
	var bad error
	out := t.render(func(tok string) (string, bool) {
		v, _ := value(c, tok)
		return v, true
	})
	for _, p := range t.parts {
		if p.where == inJSONNumber {
			// Numeric tokens are spliced in raw, so only a real number may
			// pass; anything else would break the body's JSON.
			if v, _ := value(c, p.token); v != "" && !isJSONNumber(v) {
				bad = fmt.Errorf("%w: value of {%s} is not a JSON number: %q", ErrTemplate, p.token, v)
			}
		}
		if p.where == inHeader && p.token != "" {
			v, _ := value(c, p.token)
			if strings.ContainsAny(v, "\r\n") {
				bad = fmt.Errorf("%w: value of {%s} has a line break", ErrTemplate, p.token)
			} else if hasCTL(v) {
				// net/http refuses such a header at send time; refusing it
				// here keeps a doomed request out of the outbox.
				bad = fmt.Errorf("%w: value of {%s} has a control character", ErrTemplate, p.token)
			}
		}
	}
	return out, bad
}

// isJSONNumber reports whether v is a single JSON number literal.
func isJSONNumber(v string) bool {
	return v != "" && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') && json.Valid([]byte(v))
}

// hasCTL reports whether v holds an ASCII control character other than
// horizontal tab, which RFC 9110 forbids in a field value.
func hasCTL(v string) bool {
	for i := 0; i < len(v); i++ {
		if (v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f {
			return true
		}
	}
	return false
}

func (t *Template) render(value func(string) (string, bool)) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.token == "" {
			b.WriteString(p.lit)
			continue
		}
		v, _ := value(p.token)
		switch p.where {
		case inPath:
			b.WriteString(escapeSegment(v))
		case inQuery, inForm:
			b.WriteString(url.QueryEscape(v))
		case inJSONString:
			q, _ := json.Marshal(v)
			b.Write(q[1 : len(q)-1])
		case inJSONNumber:
			if v == "" {
				b.WriteString("null")
			} else {
				b.WriteString(v)
			}
		case inHeader:
			b.WriteString(v)
		}
	}
	return b.String()
}

// escapeSegment escapes a value for one path segment. A value made only of
// dots is percent-encoded too, so "." and ".." cannot walk the path.
func escapeSegment(v string) string {
	if v != "" && strings.Trim(v, ".") == "" {
		return strings.Repeat("%2E", len(v))
	}
	return url.PathEscape(v)
}
