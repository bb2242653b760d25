package postback

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrTemplate is wrapped by every template error.
var ErrTemplate = errors.New("bad postback template")

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

// Tokens returns the tokens the template uses.
func (t *Template) Tokens() []string {
	var out []string
	for _, p := range t.parts {
		if p.token != "" {
			out = append(out, p.token)
		}
	}
	return out
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
	err = scan(rest[hostEnd:], func(lit string) error {
		// Track the component as literal text moves past ? and #.
		for i := 0; i < len(lit); i++ {
			switch lit[i] {
			case '?':
				if where == inPath {
					where = inQuery
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
		t.parts = append(t.parts, part{token: tok, where: where})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrTemplate, raw, err)
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
	err := scan(raw, func(lit string) error {
		t.parts = append(t.parts, part{lit: lit})
		return nil
	}, func(tok string) error {
		t.parts = append(t.parts, part{token: tok, where: where})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrTemplate, raw, err)
	}
	return t, nil
}

// ParseJSON parses a JSON body template. A token inside a string literal is
// escaped as JSON string content; outside quotes only numeric tokens
// (amount, timestamp, …) may stand, rendered as a number or null. The
// template with every token replaced by a sample value must be valid JSON.
func ParseJSON(raw string) (*Template, error) {
	t := &Template{raw: raw}
	inString, escaped := false, false
	err := scan(raw, func(lit string) error {
		for i := 0; i < len(lit); i++ {
			switch {
			case escaped:
				escaped = false
			case lit[i] == '\\' && inString:
				escaped = true
			case lit[i] == '"':
				inString = !inString
			}
		}
		t.parts = append(t.parts, part{lit: lit})
		return nil
	}, func(tok string) error {
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
		return nil, fmt.Errorf("%w %q: %v", ErrTemplate, raw, err)
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
func scan(raw string, lit func(string) error, token func(string) error) error {
	var b strings.Builder
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		s := b.String()
		b.Reset()
		return lit(s)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
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
				return fmt.Errorf("unknown token {%s} (known: %s, %s)", name, strings.Join(Tokens, ", "), "sub1…sub10, utm_*")
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

// Render fills the template from a conversion.
func (t *Template) Render(c *Conversion) (string, error) {
	var bad error
	out := t.render(func(tok string) (string, bool) {
		v, _ := c.Value(tok)
		return v, true
	})
	for _, p := range t.parts {
		if p.where == inHeader && p.token != "" {
			if v, _ := c.Value(p.token); strings.ContainsAny(v, "\r\n") {
				bad = fmt.Errorf("value of {%s} has a line break", p.token)
			}
		}
	}
	return out, bad
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
