package decorate

import "bytes"

// state is a state of the WHATWG HTML tokenizer, as far as it decides where
// tags, attribute values, comments and raw text begin and end. Character
// references, NULs and doctype details change no boundary and are not
// followed.
type state uint8

const (
	data state = iota
	tagOpen
	endTagOpen
	tagName
	beforeAttrName
	attrName
	afterAttrName
	beforeAttrValue
	attrValueDouble
	attrValueSingle
	attrValueUnquoted
	afterAttrValue
	selfClosing
	markupOpen     // after "<!"
	markupOpenDash // after "<!-"
	bogusComment   // "<?…>", "</1…>", "<!DOCTYPE …>", "<![CDATA[…>": all end at the first '>'
	commentStart
	commentStartDash
	comment
	commentEndDash
	commentEnd
	commentEndBang
	rawText // RAWTEXT and RCDATA: style, xmp, iframe, noembed, noframes, noscript, textarea, title
	rawLessThan
	rawEndTagName
	scriptData
	scriptLessThan
	scriptEndTagName
	scriptEscapeStart
	scriptEscapeStartDash
	scriptEscaped
	scriptEscapedDash
	scriptEscapedDashDash
	scriptEscapedLessThan
	scriptEscapedEndTagName
	scriptDoubleEscapeStart
	scriptDoubleEscaped
	scriptDoubleEscapedDash
	scriptDoubleEscapedDashDash
	scriptDoubleEscapedLessThan
	scriptDoubleEscapeEnd
	plaintext // everything after <plaintext> is text
)

// event is what the lexer stops to report.
type event uint8

const (
	none event = iota
	// valueStart: the value of a candidate attribute begins at lexer.at.
	valueStart
	// valueEnd: the value of a candidate attribute ends before lexer.at.
	valueEnd
)

// lexer follows a page's bytes through the tokenizer states. Its state
// survives between writes, so a page may be split anywhere.
type lexer struct {
	state state
	event event
	at    int // position in the current write of the reported event

	name    [10]byte // lower-cased start of the tag name
	nameLen int      // bytes in name; len(name)+1 when the name is longer
	endTag  bool
	// want is the attribute that holds this element's link ("href",
	// "action", "formaction"), until the tag has had an attribute of that
	// name: a browser keeps the first of duplicate attributes.
	want      string
	attrMatch int  // bytes of want the attribute name matched, -1 when it differs
	candidate bool // the current attribute is the link attribute
	// afterTag is the state that follows the current start tag: data, or
	// the raw text of script, style and the like.
	afterTag state
	rawName  string // the element whose raw text is being read
	match    int    // bytes of the raw element's name matched after "</", -1 when it differs
}

// Byte classes, looked up in byteClass: the inner loops over names test
// one table entry per byte.
const (
	space     = 1 << iota // ' ', '\t', '\n', '\f', '\r'
	slashOrGT             // '/', '>': a name ends
	equals                // '=': an attribute name ends
)

var byteClass = [256]uint8{
	' ': space, '\t': space, '\n': space, '\f': space, '\r': space,
	'/': slashOrGT, '>': slashOrGT, '=': equals,
}

func isWhitespace(c byte) bool { return byteClass[c]&space != 0 }

func isAlpha(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lex advances through p from i until p ends or an event is to be
// reported, and returns where it stopped.
func (l *lexer) lex(p []byte, i int) int {
	for i < len(p) {
		c := p[i]
		switch l.state {
		case data:
			j := bytes.IndexByte(p[i:], '<')
			if j < 0 {
				return len(p)
			}
			i += j + 1
			l.state = tagOpen
			continue
		case tagOpen:
			switch {
			case isAlpha(c):
				l.startTag(false)
				continue
			case c == '/':
				l.state = endTagOpen
			case c == '!':
				l.state = markupOpen
			case c == '?':
				l.state = bogusComment
			default:
				l.state = data
				continue
			}
		case endTagOpen:
			switch {
			case isAlpha(c):
				l.startTag(true)
				continue
			case c == '>':
				l.state = data // "</>" is nothing at all
			default:
				l.state = bogusComment
				continue
			}
		case tagName:
			j := i
			for j < len(p) && byteClass[p[j]]&(space|slashOrGT) == 0 {
				j++
			}
			if n := l.nameLen + j - i; n <= len(l.name) {
				for k, c := range p[i:j] {
					l.name[l.nameLen+k] = lower(c)
				}
				l.nameLen = n
			} else {
				l.nameLen = len(l.name) + 1 // longer than any name of interest
			}
			if i = j; i == len(p) {
				return i
			}
			c = p[i]
			l.endTagName()
			switch c {
			case '/':
				l.state = selfClosing
			case '>':
				l.state = l.afterTag
			default:
				l.state = beforeAttrName
			}
		case beforeAttrName:
			switch {
			case isWhitespace(c):
			case c == '/':
				l.state = selfClosing
			case c == '>':
				l.state = l.afterTag
			default:
				// '=' here starts a name, as any other byte does.
				l.startAttr(c)
			}
		case attrName:
			j := i
			for j < len(p) && byteClass[p[j]]&(space|slashOrGT|equals) == 0 {
				j++
			}
			if l.attrMatch >= 0 {
				for _, c := range p[i:j] {
					l.addAttrName(c)
				}
			}
			if i = j; i == len(p) {
				return i
			}
			c = p[i]
			switch {
			case isWhitespace(c):
				l.endAttrName()
				l.state = afterAttrName
			case c == '/':
				l.endAttrName()
				l.state = selfClosing
			case c == '>':
				l.endAttrName()
				l.state = l.afterTag
			default: // '='
				l.endAttrName()
				l.state = beforeAttrValue
			}
		case afterAttrName:
			switch {
			case isWhitespace(c):
			case c == '/':
				l.state = selfClosing
			case c == '=':
				l.state = beforeAttrValue
			case c == '>':
				l.state = l.afterTag
			default:
				l.startAttr(c)
			}
		case beforeAttrValue:
			switch {
			case isWhitespace(c):
			case c == '"' || c == '\'':
				l.state = attrValueDouble
				if c == '\'' {
					l.state = attrValueSingle
				}
				if l.candidate {
					return l.report(valueStart, i+1)
				}
			case c == '>':
				l.state = l.afterTag // a missing value
			default:
				l.state = attrValueUnquoted
				if l.candidate {
					l.event, l.at = valueStart, i
					return i
				}
				continue
			}
		case attrValueDouble, attrValueSingle:
			quote := byte('"')
			if l.state == attrValueSingle {
				quote = '\''
			}
			j := bytes.IndexByte(p[i:], quote)
			if j < 0 {
				return len(p)
			}
			i += j
			l.state = afterAttrValue
			if l.candidate {
				return l.report(valueEnd, i)
			}
		case attrValueUnquoted:
			for ; i < len(p); i++ {
				if c = p[i]; isWhitespace(c) || c == '>' {
					break
				}
			}
			if i == len(p) {
				return i
			}
			if c == '>' {
				l.state = l.afterTag
			} else {
				l.state = beforeAttrName
			}
			if l.candidate {
				return l.report(valueEnd, i)
			}
		case afterAttrValue:
			switch {
			case isWhitespace(c):
				l.state = beforeAttrName
			case c == '/':
				l.state = selfClosing
			case c == '>':
				l.state = l.afterTag
			default:
				l.state = beforeAttrName
				continue
			}
		case selfClosing:
			if c != '>' {
				l.state = beforeAttrName
				continue
			}
			l.state = l.afterTag
		case markupOpen, markupOpenDash:
			if c != '-' {
				l.state = bogusComment
				continue
			}
			if l.state == markupOpen {
				l.state = markupOpenDash
			} else {
				l.state = commentStart
			}
		case bogusComment:
			j := bytes.IndexByte(p[i:], '>')
			if j < 0 {
				return len(p)
			}
			i += j
			l.state = data
		case commentStart, commentStartDash:
			switch c {
			case '-':
				if l.state == commentStart {
					l.state = commentStartDash
				} else {
					l.state = commentEnd
				}
			case '>':
				l.state = data // "<!-->" and "<!--->" are whole comments
			default:
				l.state = comment
				continue
			}
		case comment:
			// "<!--" inside a comment ends in the same states as "--": only
			// dashes and what follows them decide where a comment ends.
			j := bytes.IndexByte(p[i:], '-')
			if j < 0 {
				return len(p)
			}
			i += j
			l.state = commentEndDash
		case commentEndDash:
			if c != '-' {
				l.state = comment
				continue
			}
			l.state = commentEnd
		case commentEnd:
			switch c {
			case '>':
				l.state = data
			case '!':
				l.state = commentEndBang
			case '-':
			default:
				l.state = comment
				continue
			}
		case commentEndBang:
			switch c {
			case '-':
				l.state = commentEndDash
			case '>':
				l.state = data
			default:
				l.state = comment
				continue
			}
		case rawText, scriptData:
			j := bytes.IndexByte(p[i:], '<')
			if j < 0 {
				return len(p)
			}
			i += j
			if l.state == rawText {
				l.state = rawLessThan
			} else {
				l.state = scriptLessThan
			}
		case rawLessThan:
			if c != '/' {
				l.state = rawText
				continue
			}
			l.state, l.match = rawEndTagName, 0
		case rawEndTagName:
			if l.endTagNameByte(c, l.rawName, rawText) {
				continue
			}
		case scriptLessThan:
			switch c {
			case '/':
				l.state, l.match = scriptEndTagName, 0
			case '!':
				l.state = scriptEscapeStart
			default:
				l.state = scriptData
				continue
			}
		case scriptEndTagName:
			if l.endTagNameByte(c, "script", scriptData) {
				continue
			}
		case scriptEscapeStart, scriptEscapeStartDash:
			if c != '-' {
				l.state = scriptData
				continue
			}
			if l.state == scriptEscapeStart {
				l.state = scriptEscapeStartDash
			} else {
				l.state = scriptEscapedDashDash
			}
		case scriptEscaped, scriptEscapedDash, scriptEscapedDashDash:
			switch {
			case c == '-':
				if l.state == scriptEscaped {
					l.state = scriptEscapedDash
				} else {
					l.state = scriptEscapedDashDash
				}
			case c == '<':
				l.state = scriptEscapedLessThan
			case c == '>' && l.state == scriptEscapedDashDash:
				l.state = scriptData
			default:
				l.state = scriptEscaped
			}
		case scriptEscapedLessThan:
			switch {
			case c == '/':
				l.state, l.match = scriptEscapedEndTagName, 0
			case isAlpha(c):
				l.state, l.match = scriptDoubleEscapeStart, 0
				continue
			default:
				l.state = scriptEscaped
				continue
			}
		case scriptEscapedEndTagName:
			if l.endTagNameByte(c, "script", scriptEscaped) {
				continue
			}
		case scriptDoubleEscapeStart, scriptDoubleEscapeEnd:
			// "<script" inside an escaped script starts a double-escaped
			// stretch in which "</script>" does not end the script; the next
			// "</script" ends the stretch.
			switch {
			case isAlpha(c):
				l.matchName(c, "script")
			case isWhitespace(c) || c == '/' || c == '>':
				script := l.match == len("script")
				switch {
				case l.state == scriptDoubleEscapeStart && script:
					l.state = scriptDoubleEscaped
				case l.state == scriptDoubleEscapeStart:
					l.state = scriptEscaped
				case script: // the end of a double-escaped stretch
					l.state = scriptEscaped
				default:
					l.state = scriptDoubleEscaped
				}
			default:
				if l.state == scriptDoubleEscapeStart {
					l.state = scriptEscaped
				} else {
					l.state = scriptDoubleEscaped
				}
				continue
			}
		case scriptDoubleEscaped, scriptDoubleEscapedDash, scriptDoubleEscapedDashDash:
			switch {
			case c == '-':
				if l.state == scriptDoubleEscaped {
					l.state = scriptDoubleEscapedDash
				} else {
					l.state = scriptDoubleEscapedDashDash
				}
			case c == '<':
				l.state = scriptDoubleEscapedLessThan
			case c == '>' && l.state == scriptDoubleEscapedDashDash:
				l.state = scriptData
			default:
				l.state = scriptDoubleEscaped
			}
		case scriptDoubleEscapedLessThan:
			if c != '/' {
				l.state = scriptDoubleEscaped
				continue
			}
			l.state, l.match = scriptDoubleEscapeEnd, 0
		case plaintext:
			return len(p)
		}
		i++
	}
	return i
}

// report records ev at position at, the byte after a quote or the byte that
// ends a value, and returns where lexing goes on: past that byte. A value's
// end also ends the attribute's candidacy.
func (l *lexer) report(ev event, at int) int {
	l.event, l.at = ev, at
	if ev == valueEnd {
		l.candidate = false
		return at + 1
	}
	return at
}

// startTag begins a start or end tag; the first byte of its name is next.
func (l *lexer) startTag(end bool) {
	l.state = tagName
	l.endTag = end
	l.nameLen = 0
	l.want = ""
	l.candidate = false
	l.afterTag = data
}

// endTagName decides, at the end of a start tag's name, which attribute
// holds its link and what follows the tag.
func (l *lexer) endTagName() {
	if l.endTag || l.nameLen > len(l.name) {
		return
	}
	switch string(l.name[:l.nameLen]) {
	case "a", "area":
		l.want = "href"
	case "form":
		l.want = "action"
	case "button", "input":
		l.want = "formaction"
	case "script":
		l.afterTag = scriptData
	case "style":
		l.afterTag, l.rawName = rawText, "style"
	case "xmp":
		l.afterTag, l.rawName = rawText, "xmp"
	case "iframe":
		l.afterTag, l.rawName = rawText, "iframe"
	case "noembed":
		l.afterTag, l.rawName = rawText, "noembed"
	case "noframes":
		l.afterTag, l.rawName = rawText, "noframes"
	case "noscript":
		l.afterTag, l.rawName = rawText, "noscript"
	case "textarea":
		l.afterTag, l.rawName = rawText, "textarea"
	case "title":
		l.afterTag, l.rawName = rawText, "title"
	case "plaintext":
		l.afterTag = plaintext
	}
}

// startAttr begins an attribute name with c.
func (l *lexer) startAttr(c byte) {
	l.state = attrName
	l.candidate = false
	l.attrMatch = -1
	if l.want != "" {
		l.attrMatch = 0
	}
	l.addAttrName(c)
}

func (l *lexer) addAttrName(c byte) {
	if l.attrMatch < 0 {
		return
	}
	if l.attrMatch < len(l.want) && lower(c) == l.want[l.attrMatch] {
		l.attrMatch++
	} else {
		l.attrMatch = -1
	}
}

func (l *lexer) endAttrName() {
	if l.want != "" && l.attrMatch == len(l.want) {
		l.candidate = true
		l.want = ""
	}
}

// matchName follows a name after "</" against name, ignoring case.
func (l *lexer) matchName(c byte, name string) {
	if l.match >= 0 && l.match < len(name) && lower(c) == name[l.match] {
		l.match++
	} else {
		l.match = -1
	}
}

// endTagNameByte takes the next byte of a possible end tag "</name" in raw
// text or a script. At a delimiter after the whole name the end tag begins,
// and the byte is lexed again as part of the tag; any other byte that is
// not a letter sends it back to text. It reports whether c is to be lexed
// again.
func (l *lexer) endTagNameByte(c byte, name string, text state) bool {
	switch {
	case isAlpha(c):
		l.matchName(c, name)
		return false
	case (isWhitespace(c) || c == '/' || c == '>') && l.match == len(name):
		l.startTag(true) // c, lexed again, ends the name
		return true
	default:
		l.state = text
		return true
	}
}
