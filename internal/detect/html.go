package detect

import (
	"bytes"
)

// scriptKind classifies a <script> element by its type attribute.
type scriptKind uint8

const (
	// kindJS is classic or module JavaScript, and every type that is not
	// JSON: consent managers (type="text/plain" data-cookieconsent=…) and
	// Partytown (type="text/partytown") park tag-manager scripts under
	// other types until they run, and the data layer they push is the same.
	kindJS scriptKind = iota
	kindLDJSON
	kindMagentoInit
	kindJSON
)

// script is one <script> element's text as offsets into Page.Body.
type script struct {
	kind       scriptKind
	start, end int
}

// scanResult caches the scripts of one body. first and n identify the body
// so that a Page whose Body was replaced is scanned again.
type scanResult struct {
	first   *byte
	n       int
	scripts []script
}

// scripts returns the <script> elements of the page's body, scanning it on
// first use.
func (p *Page) scripts() []script {
	if len(p.Body) == 0 {
		return nil
	}
	if s := p.scan; s != nil && s.first == &p.Body[0] && s.n == len(p.Body) {
		return s.scripts
	}
	p.scan = &scanResult{first: &p.Body[0], n: len(p.Body), scripts: findScripts(p.Body)}
	return p.scan.scripts
}

// text returns the body bytes of a script, with no spare capacity so that
// nothing appending to it can write into the body.
func (p *Page) text(s script) []byte { return p.Body[s.start:s.end:s.end] }

// findScripts returns the <script> elements of an HTML document in document
// order, following the WHATWG tokenizer
// (https://html.spec.whatwg.org/multipage/parsing.html#tokenization) for
// what decides where a script is: comments, bogus comments and doctypes,
// quoted attribute values (a ">" inside one does not end the tag), the
// raw-text elements whose content is not markup (style, textarea, title,
// noscript, …), and the script-data escape states (`<!-- <script>` inside a
// script hides a "</script>"). Everything else a tree builder does is
// irrelevant to finding scripts and skipped.
//
// It is a purpose-built scanner rather than a general tokenizer because the
// general ones look at every byte (the tdewolff lexer measured about 1.2 ms
// for a 300 KB page, over the budget for a response hook); this one jumps
// from '<' to '<' with bytes.IndexByte. Its results are checked against the
// tdewolff lexer on the test pages and by a differential fuzz target.
//
// An unterminated script at the end of a truncated body yields its text so
// far.
func findScripts(b []byte) []script {
	var out []script
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 || i+j+1 >= len(b) {
			return out
		}
		i += j
		c := b[i+1]
		switch {
		case c == '!':
			if bytes.HasPrefix(b[i:], []byte("<!--")) {
				i = commentEnd(b, i+4)
			} else {
				i = bogusEnd(b, i+2) // doctype, CDATA outside foreign content
			}
		case c == '?':
			i = bogusEnd(b, i+1)
		case c == '/':
			switch {
			case i+2 < len(b) && isAlpha(b[i+2]):
				_, _, i = tag(b, i+2, false)
			case i+2 < len(b) && b[i+2] == '>':
				i += 3
			default:
				i = bogusEnd(b, i+2)
			}
		case isAlpha(c):
			name, typ, end := tag(b, i+1, true)
			i = end
			if i >= len(b) {
				return out
			}
			raw := rawTextElement(name)
			switch {
			case raw == "":
			case raw == "plaintext":
				return out
			case raw == "script":
				textEnd, next := scriptEnd(b, i)
				if textEnd > i {
					out = append(out, script{kind: scriptKindOf(typ), start: i, end: textEnd})
				}
				i = next
			default:
				_, i = rawTextEnd(b, i, raw)
			}
		default:
			i++ // a '<' that starts no tag is text
		}
	}
}

// commentEnd returns the index after the comment whose body starts at i
// ("<!-->" and "<!--->" are complete empty comments).
func commentEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '>' {
		return i + 1
	}
	if i+1 < len(b) && b[i] == '-' && b[i+1] == '>' {
		return i + 2
	}
	k := bytes.Index(b[i:], []byte("-->"))
	if k < 0 {
		return len(b)
	}
	return i + k + 3
}

// bogusEnd returns the index after the next '>'.
func bogusEnd(b []byte, i int) int {
	k := bytes.IndexByte(b[i:], '>')
	if k < 0 {
		return len(b)
	}
	return i + k + 1
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// tag reads a tag from its name at i to past its '>'. For a start tag
// (wantType) it returns the name and the value of its type attribute.
func tag(b []byte, i int, wantType bool) (name, typ []byte, end int) {
	start := i
	for i < len(b) && !isSpace(b[i]) && b[i] != '/' && b[i] != '>' {
		i++
	}
	name = b[start:i]
	for i < len(b) {
		c := b[i]
		if isSpace(c) || c == '/' {
			i++
			continue
		}
		if c == '>' {
			return name, typ, i + 1
		}
		// Attribute name; a leading '=' belongs to it.
		ns := i
		i++
		for i < len(b) && !isSpace(b[i]) && b[i] != '/' && b[i] != '>' && b[i] != '=' {
			i++
		}
		attr := b[ns:i]
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) || b[i] != '=' {
			continue
		}
		i++
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			break
		}
		var val []byte
		if q := b[i]; q == '"' || q == '\'' {
			k := bytes.IndexByte(b[i+1:], q)
			if k < 0 {
				return name, typ, len(b)
			}
			val = b[i+1 : i+1+k]
			i += k + 2
		} else {
			vs := i
			for i < len(b) && !isSpace(b[i]) && b[i] != '>' {
				i++
			}
			val = b[vs:i]
		}
		// The first attribute of a name wins, as in the tokenizer.
		if wantType && typ == nil && bytes.EqualFold(attr, []byte("type")) {
			typ = val[:len(val):len(val)]
			if typ == nil {
				typ = []byte{}
			}
		}
	}
	return name, typ, len(b)
}

// rawTextElement returns the lower-case name of an element whose content
// the tokenizer does not parse as markup, or "". noscript is one because
// browsers run scripts: a <script> written inside <noscript> never runs.
func rawTextElement(name []byte) string {
	for _, n := range [...]string{"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"} {
		if len(name) == len(n) && bytes.EqualFold(name, []byte(n)) {
			return n
		}
	}
	return ""
}

// endTagAt reports whether b[i:] starts with "</name" followed by a
// character that ends a tag name, or by the end of a truncated body (the
// standard would make that text, but a cut end tag is not script source),
// ignoring case.
func endTagAt(b []byte, i int, name string) bool {
	j := i + 2 + len(name)
	if j > len(b) || b[i+1] != '/' || !bytes.EqualFold(b[i+2:j], []byte(name)) {
		return false
	}
	if j == len(b) {
		return true
	}
	c := b[j]
	return isSpace(c) || c == '/' || c == '>'
}

// rawTextEnd finds the end tag of a raw-text element whose content starts
// at i; it returns where the content ends and the index after the end tag.
func rawTextEnd(b []byte, i int, name string) (textEnd, next int) {
	for {
		k := bytes.IndexByte(b[i:], '<')
		if k < 0 {
			return len(b), len(b)
		}
		i += k
		if endTagAt(b, i, name) {
			_, _, next = tag(b, i+2, false)
			return i, next
		}
		i++
	}
}

// scriptEnd finds the end of script data starting at i, honouring the
// escaped states: after "<!--", a "<script" starts a double-escaped section
// in which "</script>" does not end the element, until "-->" or
// "</script>" leaves it.
func scriptEnd(b []byte, i int) (textEnd, next int) {
	escaped, double := false, false
	for {
		k := bytes.IndexByte(b[i:], '<')
		if escaped {
			d := bytes.Index(b[i:], []byte("-->"))
			if d >= 0 && (k < 0 || d < k) {
				escaped, double = false, false
				i += d + 3
				continue
			}
		}
		if k < 0 {
			return len(b), len(b)
		}
		i += k
		switch {
		case endTagAt(b, i, "script"):
			if !double {
				_, _, next = tag(b, i+2, false)
				return i, next
			}
			double = false
			i += 8
		case !escaped && bytes.HasPrefix(b[i:], []byte("<!--")):
			escaped = true
			i += 4
		case escaped && !double && startTagAt(b, i, "script"):
			double = true
			i += 7
		default:
			i++
		}
	}
}

// startTagAt reports whether b[i:] starts with "<name" followed by a
// character that ends a tag name, ignoring case.
func startTagAt(b []byte, i int, name string) bool {
	j := i + 1 + len(name)
	if j >= len(b) || !bytes.EqualFold(b[i+1:j], []byte(name)) {
		return false
	}
	c := b[j]
	return isSpace(c) || c == '/' || c == '>'
}

// scriptKindOf maps a script type attribute value to a kind.
func scriptKindOf(v []byte) scriptKind {
	v = bytes.TrimSpace(v)
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		v = bytes.TrimSpace(v[:i])
	}
	switch {
	case bytes.EqualFold(v, []byte("application/ld+json")):
		return kindLDJSON
	case bytes.EqualFold(v, []byte("text/x-magento-init")):
		return kindMagentoInit
	case containsFold(v, "json"):
		return kindJSON
	}
	return kindJS
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring case, without allocating.
func containsFold(s []byte, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if bytes.EqualFold(s[i:i+n], []byte(sub)) {
			return true
		}
	}
	return false
}
